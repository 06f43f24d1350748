import t from 'tap';
import WebSocket from 'ws';
import { ffmpegCount, IN_WORKERS, startGateway, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
t.before(async () => {
  gw = await startGateway(IN_WORKERS);
});
t.teardown(async () => {
  await gw.close();
});

const startup = (body: unknown) => gw.post('/rest-api/push/startup', body);

t.test('startup: 400 names the missing or invalid field, and nothing is spawned', async (t) => {
  const cases: [unknown, string, RegExp][] = [
    [{ streamName: 'a' }, 'rtmpUrl', /rtmpUrl/],
    [{ rtmpUrl: 'rtmp://h/live' }, 'streamName', /streamName/],
    [{ streamName: 'a', rtmpUrl: 'http://h/live' }, 'rtmpUrl', /rtmp:\/\//],
    [{ streamName: 'a', rtmpUrl: '-version' }, 'rtmpUrl', /rtmp:\/\//],
    [{ streamName: 'a', rtmpUrl: 'rtmp://h/live', bogus: 1 }, 'bogus', /bogus: unknown field/],
    [{ streamName: 'a', rtmpUrl: 'rtmp://h/live', height: -1 }, 'height', /height/],
    [{ streamName: 'a', rtmpUrl: 'rtmp://h/live', fps: 'x' }, 'fps', /fps/],
    [
      { streamName: 'a', rtmpUrl: 'rtmp://h/live', rtmpFlashVersion: 'FMLE\n3.0' },
      'rtmpFlashVersion',
      /printable ASCII/,
    ],
    [{ streamName: 'a', rtmpUrl: 'rtmp://h/live', options: { action: 'dance' } }, 'options.action', /options\.action/],
    [
      { streamName: 'a', rtmpUrl: 'rtmp://localhost/live', options: { soundFile: 'chime.wav' } },
      'options.soundFile',
      /only with "action": "sound_on"/,
    ],
    [
      { streamName: 'a', rtmpUrl: 'rtmp://localhost/live', options: { action: 'sound_on' } },
      'options.soundFile',
      /is required/,
    ],
    [
      { streamName: 'a', rtmpUrl: 'rtmp://localhost/live', options: { action: 'mute', volume: 3 } },
      'options.volume',
      /options\.volume/,
    ],
  ];
  for (const [body, field, message] of cases) {
    const res = await startup(body);
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.body.field, field, `field for ${JSON.stringify(body)}`);
    t.match(res.body.message, message);
  }
  t.equal(await ffmpegCount(), 0, 'no ffmpeg was started');
  t.same(await gw.plane.find({}), []);
});

t.test('startup: a stream key in a bad request never comes back in the error', async (t) => {
  const res = await startup({
    streamName: 'a',
    rtmpUrl: 'rtmps://h:99999/live2/supersecretkey',
    rtmpTransponderFullUrl: true,
  });
  t.equal(res.status, 400);
  t.notMatch(JSON.stringify(res.body), /supersecretkey/);
});

t.test('startup: 404 when the stream is not publishing', async (t) => {
  const res = await startup({ streamName: 'nobody', rtmpUrl: 'rtmp://127.0.0.1:1/live' });
  t.equal(res.status, 404);
  t.match(res.body.message, /not publishing/);
});

t.test('startup: malformed JSON is a 400', async (t) => {
  const res = await fetch(gw.baseUrl + '/rest-api/push/startup', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{',
  });
  t.equal(res.status, 400);
});

t.test('find, find_all and terminate answer 404 when there is nothing', async (t) => {
  t.equal((await gw.post('/rest-api/push/find_all')).status, 404);
  t.equal((await gw.post('/rest-api/push/find_all', {})).status, 404);
  t.equal((await gw.post('/rest-api/push/find', { streamName: 'x' })).status, 404);
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: 'nope' })).status, 404);
  const bad = await gw.post('/rest-api/push/terminate', {});
  t.equal(bad.status, 400);
  t.equal(bad.body.field, 'mediaSessionId');
  t.equal((await gw.post('/rest-api/push/find', { name: 'x' })).body.field, 'name');
});

t.test('WHIP: 415 for another content type, 400 for an offer that is not SDP', async (t) => {
  const json = await fetch(gw.baseUrl + '/whip/s1', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  t.equal(json.status, 415);
  const text = await fetch(gw.baseUrl + '/whip/s1', {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'v=0',
  });
  t.equal(text.status, 415);
  const bad = await fetch(gw.baseUrl + '/whip/s1', {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: 'hello',
  });
  t.equal(bad.status, 400);
  t.match(await bad.json(), { field: 'offer' });
  const badName = await fetch(gw.baseUrl + '/whip/bad%20name', {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: 'v=0',
  });
  t.equal(badName.status, 400);
  t.same(await gw.plane.streams(), []);
});

t.test('WHIP: OPTIONS answers CORS preflight, PATCH is 405, DELETE of an unknown session is 404', async (t) => {
  const options = await fetch(gw.baseUrl + '/whip/s1', {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  });
  t.equal(options.status, 204);
  t.equal(options.headers.get('access-control-allow-origin'), '*');
  t.match(options.headers.get('access-control-allow-methods'), /POST/);
  t.match(options.headers.get('access-control-expose-headers'), /location/);
  t.equal(options.headers.get('accept-post'), 'application/sdp');
  t.equal(
    (
      await fetch(gw.baseUrl + '/whip/s1/abc', {
        method: 'PATCH',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
        body: 'a=x',
      })
    ).status,
    405,
  );
  t.equal((await fetch(gw.baseUrl + '/whip/s1/abc', { method: 'DELETE' })).status, 404);
});

t.test('SDK signalling: invalid messages get an error naming the field, and nothing is created', async (t) => {
  const ws = new WebSocket(gw.baseUrl.replace('http', 'ws') + '/ws');
  const messages: any[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d as Buffer))));
  await new Promise((r) => ws.once('open', r));
  const next = async (): Promise<any> => {
    const start = messages.length;
    for (let i = 0; i < 100 && messages.length === start; i++) await new Promise((r) => setTimeout(r, 20));
    return messages[messages.length - 1];
  };
  await next();
  t.match(messages[0], { type: 'hello' });
  ws.send('not json');
  t.match(await next(), { type: 'error', field: 'message' });
  ws.send(JSON.stringify({ type: 'fly' }));
  t.match(await next(), { type: 'error', field: 'type' });
  ws.send(JSON.stringify({ type: 'publish', requestId: '1', name: 'x', sdp: 'v=0', rtmpUrl: 'ftp://h/x' }));
  t.match(await next(), { type: 'error', requestId: '1', field: 'rtmpUrl' });
  ws.send(JSON.stringify({ type: 'publish', requestId: '2', name: 'x', sdp: 'nonsense' }));
  t.match(await next(), { type: 'error', requestId: '2', field: 'sdp' });
  t.same(await gw.plane.streams(), []);
  ws.close();
});

t.test('the SDK and the publish page are served', async (t) => {
  const sdk = await fetch(gw.baseUrl + '/sdk/gateway.js');
  t.equal(sdk.status, 200);
  t.match(await sdk.text(), /createSession/);
  t.equal((await fetch(gw.baseUrl + '/sdk/gateway.d.ts')).status, 200);
  t.match(await (await fetch(gw.baseUrl + '/')).text(), /src="\/publish\.js"/);
  t.match(
    await (await fetch(gw.baseUrl + '/publish.js')).text(),
    /from '\/sdk\/gateway\.js'/,
    "the page's script loads the SDK",
  );
  t.equal((await fetch(gw.baseUrl + '/nope')).status, 404);
});
