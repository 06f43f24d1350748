import t from 'tap';
import { WebSocket } from 'ws';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { freePort, NginxRtmp } from '../../kit/rtmp-server.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { IN_WORKERS, startGateway, type TestGateway } from '../helpers/gateway.js';
import { testFixture } from '../helpers/synthetic.js';

const KEY = 'sdk-destination-key-31337';
let gw: TestGateway;
let nginx: NginxRtmp;
t.before(async () => {
  nginx = await NginxRtmp.start();
  gw = await startGateway(IN_WORKERS);
});
t.teardown(async () => {
  await gw?.close();
  await nginx?.stop();
  await stopAllProcesses();
});

/** One SDK WebSocket: sends a message and answers the next reply. */
async function session(): Promise<{ send: (m: object) => Promise<any>; close: () => void }> {
  const ws = new WebSocket(gw.baseUrl.replace('http', 'ws') + '/ws');
  const replies: any[] = [];
  ws.on('message', (d) => replies.push(JSON.parse(String(d as Buffer))));
  await new Promise((r) => ws.once('open', r));
  await waitFor('hello', async () => replies.length > 0, 2000);
  return {
    async send(message) {
      const start = replies.length;
      ws.send(JSON.stringify(message));
      await waitFor('a reply', async () => replies.length > start, 3000);
      return replies.at(-1);
    },
    close: () => ws.close(),
  };
}

const messagesOf = (publisher: SyntheticPublisher, id: string): any[] =>
  publisher.messages.filter((m) => m.type === 'destination' && m.id === id);

t.test('bad destination messages get an error naming the field, and start nothing', async (t) => {
  const s = await session();
  t.teardown(s.close);
  const publish = (extra: object): Promise<any> =>
    s.send({ type: 'publish', requestId: 'r', name: 'cam', sdp: 'v=0', ...extra });
  const url = nginx.url();
  t.match(await publish({ rtmpUrl: url, destinations: [{ id: 'a', rtmpUrl: url }] }), {
    type: 'error',
    code: 'invalid_request',
    field: 'destinations',
    requestId: 'r',
  });
  t.match(
    await publish({
      destinations: [
        { id: 'a', rtmpUrl: url },
        { id: 'a', rtmpUrl: url + '/x' },
      ],
    }),
    { field: 'destinations.1.id', message: /given twice/ },
  );
  t.match(await publish({ destinations: [{ id: 'a b', rtmpUrl: url }] }), { field: 'destinations.0.id' });
  t.match(
    await publish({ destinations: Array.from({ length: 9 }, (_, i) => ({ id: `d${i}`, rtmpUrl: `${url}/s${i}` })) }),
    { field: 'destinations' },
  );
  t.match(
    await publish({
      destinations: [
        { id: 'a', rtmpUrl: url },
        { id: 'b', rtmpUrl: 'http://example.com/x' },
      ],
    }),
    { field: 'destinations.1.rtmpUrl', message: /^destinations\.1\.rtmpUrl: / },
  );
  t.match(await publish({ destinations: [{ id: 'a', rtmpUrl: url, extra: 1 }] }), { field: 'destinations.0.extra' });
  t.match(
    await s.send({ type: 'addDestination', requestId: 'q', name: 'cam', destination: { id: 'a', rtmpUrl: url } }),
    { code: 'not_found', field: 'name', requestId: 'q' },
  );
  t.match(await s.send({ type: 'removeDestination', name: 'cam', id: 'a' }), { code: 'not_found', field: 'name' });
  t.same(await gw.plane.streams(), [], 'no publish started');
  t.same(await gw.plane.find({}), [], 'no push started');
});

t.test(
  'several destinations: each is told by its id (live, or failed with the reason), one is added and one removed while live',
  async (t) => {
    const refused = `rtmp://127.0.0.1:${await freePort()}/live/${KEY}`;
    const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'multi', {
      sdk: {
        destinations: [
          { id: 'a', rtmpUrl: nginx.url() + '/multi_a', rtmpTransponderFullUrl: true },
          { id: 'bad', rtmpUrl: refused, rtmpTransponderFullUrl: true },
        ],
      },
    });
    t.teardown(() => publisher.stop());
    await waitFor('a live', async () => messagesOf(publisher, 'a').some((m) => m.state === 'live'), 10000);
    const bad = await waitFor(
      'bad failed',
      async () => messagesOf(publisher, 'bad').find((m) => m.state === 'failed'),
      5000,
    );
    t.match(bad, { code: 'destination_unreachable', reason: /ECONNREFUSED/, url: /\/live\/\*\*\*$/ });
    t.same(
      messagesOf(publisher, 'a').map((m) => m.state),
      ['starting', 'live'],
    );

    publisher.signal({
      type: 'addDestination',
      requestId: 'add-b',
      name: 'multi',
      destination: { id: 'b', rtmpUrl: nginx.url() + '/multi_b', rtmpTransponderFullUrl: true },
    });
    await waitFor('b live', async () => messagesOf(publisher, 'b').some((m) => m.state === 'live'), 10000);
    t.ok(
      publisher.messages.some((m) => m.type === 'destinationAdded' && m.requestId === 'add-b' && m.id === 'b'),
      'the add is answered',
    );
    publisher.signal({
      type: 'addDestination',
      requestId: 'again',
      name: 'multi',
      destination: { id: 'b', rtmpUrl: nginx.url() + '/other' },
    });
    publisher.signal({
      type: 'addDestination',
      requestId: 'wrong',
      name: 'multi',
      destination: { id: 'c', rtmpUrl: 'rtmp://' },
    });
    await waitFor('both refused', async () => publisher.messages.filter((m) => m.type === 'error').length === 2, 3000);
    t.match(
      publisher.messages.find((m) => m.requestId === 'again'),
      { code: 'conflict', field: 'destination.id' },
    );
    t.match(
      publisher.messages.find((m) => m.requestId === 'wrong'),
      { code: 'invalid_request', field: 'destination.rtmpUrl' },
    );
    await waitFor(
      'both at the RTMP server',
      async () => (await nginx.streams()).filter((s) => s.name.startsWith('multi_') && s.width > 0).length === 2,
      10000,
    );

    publisher.signal({ type: 'removeDestination', name: 'multi', id: 'a' });
    await waitFor('a stopped', async () => messagesOf(publisher, 'a').some((m) => m.state === 'stopped'), 5000);
    await waitFor(
      'multi_a gone at the server',
      async () => !(await nginx.streams()).some((s) => s.name === 'multi_a'),
      5000,
    );
    const left = (await gw.post('/rest-api/push/find', { streamName: 'multi' })).body.filter(
      (p: any) => p.state === 'running',
    );
    t.equal(left.length, 1, 'one push runs');
    t.equal(left[0].rtmpUrl, nginx.url() + '/***', 'the added one');
    t.notOk(JSON.stringify(publisher.messages).includes(KEY), 'no message carries the stream key');
  },
);
