import t from 'tap';
import { createServer } from 'node:http';
import { waitFor } from '../../kit/processes.js';
import { RtmpReceiver, type RtmpPublish } from '../../kit/rtmp-receiver.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// URL forms of Web Call Server, as nginx-rtmp sees them: its stat page (application, stream) and
// its on_publish callback (the publish's arguments and the connect's tcUrl).

t.test('application instances, query parameters and full URLs reach the RTMP server as given', async (t) => {
  const notified: URLSearchParams[] = [];
  const http = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      notified.push(new URLSearchParams(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => http.close(() => r())));
  const nginx = await NginxRtmp.start({
    onPublish: `http://127.0.0.1:${(http.address() as { port: number }).port}/on_publish`,
    apps: ['live/inst1'],
  });
  t.teardown(() => nginx.stop());
  const { gw } = await syntheticPublish(t, {}, 'src');

  const base = `rtmp://127.0.0.1:${nginx.rtmpPort}`;
  const startups = [
    { rtmpUrl: `${base}/live/?user=u1&pass=secret-pass-1` },
    { rtmpUrl: `${base}/live/inst1` },
    { rtmpUrl: `${base}/live/inst1/key-in-url-7`, rtmpTransponderFullUrl: true },
  ];
  const replies = [];
  for (const s of startups) replies.push(await gw.post('/rest-api/push/startup', { streamName: 'src', ...s }));
  t.same(
    replies.map((r) => r.status),
    [200, 200, 200],
    'every startup answers 200',
  );
  const streams = await waitFor(
    'three streams at nginx-rtmp',
    async () => {
      const all = await nginx.streams();
      return all.length === 3 && all;
    },
    10000,
  );
  t.same(streams.map((s) => `${s.app} ${s.name}`).sort(), [
    'live rtmp_src',
    'live/inst1 key-in-url-7',
    'live/inst1 rtmp_src',
  ]);

  const withQuery = notified.find((n) => n.get('user') === 'u1');
  t.ok(withQuery, 'on_publish got the query parameters');
  t.equal(withQuery?.get('pass'), 'secret-pass-1');
  t.equal(withQuery?.get('name'), 'rtmp_src');
  t.match(withQuery?.get('tcurl'), /\/live\?user=u1&pass=secret-pass-1$/, 'and the connect carried them in tcUrl');
  t.equal(notified.find((n) => n.get('name') === 'key-in-url-7')?.get('app'), 'live/inst1');

  const listing = JSON.stringify((await gw.post('/rest-api/push/find_all')).body);
  t.notMatch(listing, /secret-pass-1|key-in-url-7/, 'query values and keys stay out of listings');
  t.match(listing, /"rtmpUrl":"rtmp:\/\/127\.0\.0\.1:\d+\/live\?user=\*\*\*&pass=\*\*\*"/);
});

t.test("credentials in the URL answer the server's RTMP authentication; they never show", async (t) => {
  const receiver = await RtmpReceiver.start();
  t.teardown(() => receiver.close());
  receiver.auth = { method: 'adobe', user: 'wowza-user', password: 'pa55-w0rd' };
  const published = new Promise<RtmpPublish>((resolve) => receiver.once('publish', resolve));
  const logs: string[] = [];
  const { gw } = await syntheticPublish(t, { log_level: 'debug' }, 'authed', logs);
  const base = `127.0.0.1:${receiver.port}/live`;

  const ok = await gw.post('/rest-api/push/startup', {
    streamName: 'authed',
    rtmpUrl: `rtmp://wowza-user:pa55-w0rd@${base}`,
  });
  t.equal(ok.status, 200, JSON.stringify(ok.body));
  t.match(ok.body, { state: 'running', rtmpUrl: `rtmp://wowza-user:***@${base}` });
  t.match((await published).streamName, 'rtmp_authed');
  t.notMatch(JSON.stringify((await gw.post('/rest-api/push/find_all')).body), /pa55-w0rd/);

  const wrong = await gw.post('/rest-api/push/startup', {
    streamName: 'authed',
    rtmpUrl: `rtmp://wowza-user:not-it-42@${base}`,
  });
  t.equal(wrong.status, 500, JSON.stringify(wrong.body));
  t.match(
    wrong.body.message,
    /could not publish to the destination: the destination refused the user name or password$/,
  );
  const none = await gw.post('/rest-api/push/startup', { streamName: 'authed', rtmpUrl: `rtmp://${base}` });
  t.match(none.body.message, /requires a user name and password \(adobe authentication\)/);
  const half = await gw.post('/rest-api/push/startup', { streamName: 'authed', rtmpUrl: `rtmp://wowza-user@${base}` });
  t.equal(half.status, 400);
  t.match(half.body.message, /rtmpUrl: credentials need both a user name and a password/);
  t.equal((await gw.post('/rest-api/push/find_all')).body.length, 1, 'only the authenticated push is left');
  t.ok(logs.length > 10, 'the gateway logged at debug level');
  t.notMatch(logs.join('\n'), /pa55-w0rd|not-it-42/, 'passwords stay out of the log');
});
