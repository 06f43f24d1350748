import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { freePort, NginxRtmp } from '../../kit/rtmp-server.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { SrtListener } from '../../kit/srt-listener.js';
import { pidsMatching, waitFor } from '../../kit/processes.js';
import { startGateway } from '../helpers/gateway.js';

// POST /rest-api/push/check: connects to a destination as a push would, sends no media, and says
// how far it got (reachable, application accepted, key accepted) with a push's error codes, in
// under 5 s whatever the destination does.

const logLines: string[] = [];
const gw = await startGateway({ log_level: 'info' }, logLines);
const nginx = await NginxRtmp.start();
const receiver = await RtmpReceiver.start();
t.teardown(async () => {
  await gw.close();
  await nginx.stop();
  await receiver.close();
});
const check = (body: unknown): Promise<{ status: number; body: any }> => gw.post('/rest-api/push/check', body);

t.test(
  'a real RTMP server: reachable, the application accepted; with publish, the key too, and nothing left published',
  async (t) => {
    const connectOnly = await check({ rtmpUrl: nginx.url() });
    t.match(
      connectOnly,
      { status: 200, body: { ok: true, reachable: true, applicationAccepted: true, keyAccepted: null } },
      JSON.stringify(connectOnly.body),
    );
    // Web Call Server's clients write booleans as strings: taken as the push's own body takes them.
    const published = await check({
      rtmpUrl: `${nginx.url()}/KEYcheck5521`,
      rtmpTransponderFullUrl: 'true',
      publish: 'true',
    });
    t.match(
      published,
      {
        status: 200,
        body: { ok: true, reachable: true, applicationAccepted: true, keyAccepted: true, rtmpUrl: /\/live\/\*\*\*$/ },
      },
      JSON.stringify(published.body),
    );
    t.ok(published.body.elapsedMs < 5000, `${published.body.elapsedMs} ms`);
    await waitFor('nothing published at nginx', async () => (await nginx.streams()).length === 0, 5000);
    t.same(await nginx.streams(), [], 'unpublished at once');
    t.equal(gw.pushService.all().length, 0, 'no push was made');
  },
);

t.test("a refused application and a refused key are told apart, with the push's error code", async (t) => {
  receiver.auth = { method: 'adobe', user: 'u', password: 'right' };
  const app = await check({ rtmpUrl: `rtmp://u:wrong-pass@127.0.0.1:${receiver.port}/live` });
  t.match(
    app.body,
    { ok: false, reachable: true, applicationAccepted: false, keyAccepted: null, error: 'destination_refused' },
    JSON.stringify(app.body),
  );
  t.notMatch(JSON.stringify(app.body), /wrong-pass/, 'no password in the report');
  receiver.auth = undefined;
  receiver.refuse = { code: 'NetStream.Publish.BadName', description: 'bad stream key {stream}' };
  t.teardown(() => void (receiver.refuse = undefined));
  const key = await check({
    rtmpUrl: `rtmp://127.0.0.1:${receiver.port}/live/KEYrefused8812`,
    rtmpTransponderFullUrl: true,
    publish: true,
  });
  t.match(
    key.body,
    {
      ok: false,
      reachable: true,
      applicationAccepted: true,
      keyAccepted: false,
      error: 'destination_refused',
      message: /BadName/,
    },
    JSON.stringify(key.body),
  );
  t.notMatch(JSON.stringify(key.body), /KEYrefused8812/, 'the key the server echoed is scrubbed');
});

t.test('nobody listening, and a server that never answers: unreachable, told in under 5 s', async (t) => {
  const closed = await check({ rtmpUrl: `rtmp://127.0.0.1:${await freePort()}/live` });
  t.match(
    closed.body,
    { ok: false, reachable: false, applicationAccepted: null, error: 'destination_unreachable' },
    JSON.stringify(closed.body),
  );
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const started = Date.now();
  const hung = await check({ rtmpUrl: `rtmp://127.0.0.1:${(silent.address() as { port: number }).port}/live` });
  t.match(hung.body, { ok: false, reachable: false, error: 'destination_unreachable' }, JSON.stringify(hung.body));
  t.ok(Date.now() - started < 5000, `answered after ${Date.now() - started} ms`);
});

t.test('SRT: the handshake tells whether the passphrase is accepted; no media is sent', async (t) => {
  const listener = await SrtListener.start('check-passphrase-71');
  t.teardown(() => listener.close());
  const right = await check({ rtmpUrl: listener.url('passphrase=check-passphrase-71&streamid=SIDcheck') });
  t.match(
    right.body,
    { ok: true, reachable: true, applicationAccepted: true, keyAccepted: true, rtmpUrl: /passphrase=\*\*\*/ },
    JSON.stringify(right.body),
  );
  t.equal(await listener.received(), 0, 'no media reached the listener');
  await listener.restart();
  const wrong = await check({ rtmpUrl: listener.url('passphrase=not-the-right-one-9') });
  t.match(
    wrong.body,
    { ok: false, reachable: true, keyAccepted: false, error: 'destination_refused', message: /refused the passphrase/ },
    JSON.stringify(wrong.body),
  );
  t.same(await pidsMatching('anullsrc=r=48000'), [], "the checks' ffmpeg processes have ended");
});

t.test('bad input is a 400 naming the field; the policy applies', async (t) => {
  t.match(await check({}), { status: 400, body: { field: 'rtmpUrl' } });
  t.match(await check({ rtmpUrl: 'http://example.com/live' }), {
    status: 400,
    body: { field: 'rtmpUrl', message: /must start with/ },
  });
  t.match(await check({ rtmpUrl: nginx.url(), extra: 1 }), { status: 400, body: { field: 'extra' } });
  t.match(await check({ rtmpUrl: nginx.url(), publish: 'yes' }), { status: 400, body: { field: 'publish' } });
  t.match(await check({ rtmpUrl: 'rtmp://10.1.2.3/live' }), {
    status: 400,
    body: { field: 'rtmpUrl', message: /private address/ },
  });
});

t.test('no secret in the log', async (t) => {
  for (const secret of [
    'KEYcheck5521',
    'KEYrefused8812',
    'wrong-pass',
    'check-passphrase-71',
    'not-the-right-one-9',
    'SIDcheck',
  ]) {
    t.notOk(
      logLines.some((l) => l.includes(secret)),
      `no ${secret}`,
    );
  }
});
