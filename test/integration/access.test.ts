import t from 'tap';
import WebSocket from 'ws';
import { createAccessControl } from '../../src/security/access.js';
import { parseConfig } from '../../src/config/load.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { testFixture } from '../helpers/synthetic.js';

// Control API keys, the gateway's names and page origins, on a gateway with keys set.

const CONTROL = 'control-key-0123456789abcdef';
const METRICS = 'metrics-key-0123456789abcdef';

let gw: TestGateway;
let receiver: RtmpReceiver;
let publisher: SyntheticPublisher;
t.before(async () => {
  receiver = await RtmpReceiver.start();
  gw = await startGateway({
    api_keys: [
      { id: 'backend', secret: CONTROL, scope: ['control', 'metrics'] },
      { id: 'prometheus', secret: METRICS, scope: ['metrics'] },
    ],
    auth_failures_per_minute: 1000,
  });
  // The control key also authorizes WHIP publishing (an integrator's backend publishing itself).
  publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam', { token: CONTROL });
});
t.teardown(async () => {
  await publisher?.stop();
  await gw?.close();
  await receiver?.close();
});

async function call(
  path: string,
  body: unknown,
  token?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(gw.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: JSON.stringify(body),
  });
  const text = response.headers.get('content-type')?.startsWith('application/json') ? await response.text() : '';
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

t.test(
  'every control route: 401 without a key and with a wrong one (nothing started or changed), 2xx with the right one',
  async (t) => {
    const startup = { streamName: 'cam', rtmpUrl: receiver.url() };
    for (const token of [undefined, 'wrong-key-0123456789abcdef', METRICS]) {
      const res = await call('/rest-api/push/startup', startup, token);
      t.equal(res.status, 401, `startup with ${token ?? 'no key'}`);
      t.match(res.headers.get('www-authenticate'), /^Bearer realm="gateway"/);
      t.equal(res.body.field, 'Authorization');
    }
    t.equal(gw.ffmpeg.count, 0, 'no ffmpeg was spawned');
    t.equal(receiver.connections, 0, 'no RTMP connection was made');
    t.equal(gw.pushService.all().length, 0);

    const started = await call('/rest-api/push/startup', startup, CONTROL);
    t.equal(started.status, 200, JSON.stringify(started.body));
    const id = started.body.mediaSessionId as string;
    const routes: [string, unknown][] = [
      ['/rest-api/push/find', { streamName: 'cam' }],
      ['/rest-api/push/find_all', {}],
      ['/rest-api/push/mute', { mediaSessionId: id }],
      ['/rest-api/push/unmute', { mediaSessionId: id }],
      ['/rest-api/push/sound_on', { mediaSessionId: id, soundFile: 'chime.wav' }],
      ['/rest-api/push/sound_off', { mediaSessionId: id }],
      ['/rest-api/stream/find', { name: 'cam' }],
      ['/rest-api/stream/find_all', {}],
      ['/rest-api/stream/snapshot', { name: 'cam' }],
      ['/rest-api/stream/caption', { streamName: 'cam', text: 'Hello.' }],
    ];
    for (const [path, body] of routes) {
      t.equal((await call(path, body)).status, 401, `${path} without a key`);
      t.equal((await call(path, body, 'wrong-key-0123456789abcdef')).status, 401, `${path} with a wrong key`);
    }
    const t1 = gw.pushService.get(id);
    t.equal(t1.toJSON().muted, false, 'refused mute changed nothing');
    t.equal(t1.toJSON().soundEnabled, false, 'refused sound_on changed nothing');
    for (const [path, body] of routes) t.equal((await call(path, body, CONTROL)).status, 200, `${path} with the key`);
    t.equal((await call('/rest-api/push/terminate', { mediaSessionId: id })).status, 401, 'terminate without a key');
    t.equal(gw.pushService.all().length, 1, 'still running');
    t.equal((await call('/rest-api/push/terminate', { mediaSessionId: id }, CONTROL)).status, 200);
  },
);

t.test('/metrics takes a metrics-scoped key; /health and the pages stay open', async (t) => {
  const metrics = (token?: string): Promise<Response> =>
    fetch(gw.baseUrl + '/metrics', { headers: token ? { authorization: `Bearer ${token}` } : {} });
  t.equal((await metrics()).status, 401);
  t.equal((await metrics('nope-nope-nope-nope-nope')).status, 401);
  t.equal((await metrics(METRICS)).status, 200);
  t.equal((await metrics(CONTROL)).status, 200);
  t.equal((await fetch(gw.baseUrl + '/health')).status, 200);
  t.equal((await fetch(gw.baseUrl + '/')).status, 200);
});

t.test('requests for another host name are refused (DNS rebinding), on every route', async (t) => {
  for (const url of ['/health', '/rest-api/push/find_all', '/whip/cam2', '/']) {
    const res = await gw.app.inject({
      method: url.startsWith('/rest') ? 'POST' : 'GET',
      url,
      headers: { host: 'rebind.attacker.example:8080', authorization: `Bearer ${CONTROL}` },
    });
    t.equal(res.statusCode, 403, url);
    t.match(res.json(), { error: 'forbidden', field: 'Host' });
  }
  for (const host of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080', 'localhost']) {
    t.equal((await gw.app.inject({ method: 'GET', url: '/health', headers: { host } })).statusCode, 200, host);
  }
});

t.test('pages of other origins may not use the REST API or the WebSocket; WHIP keeps CORS', async (t) => {
  const host = new URL(gw.baseUrl).host;
  const rest = (origin: string): Promise<{ statusCode: number }> =>
    gw.app.inject({
      method: 'POST',
      url: '/rest-api/push/find_all',
      headers: { host, origin, authorization: `Bearer ${CONTROL}` },
    });
  t.equal((await rest('https://evil.example')).statusCode, 403, 'a foreign origin');
  t.equal((await rest('null')).statusCode, 403, 'an opaque origin');
  t.not((await rest(`http://${host}`)).statusCode, 403, "the gateway's own origin");
  t.not((await rest('http://localhost:3000')).statusCode, 403, 'a localhost page');

  const ws = async (origin?: string): Promise<string> =>
    new Promise((resolve) => {
      const socket = new WebSocket(gw.baseUrl.replace('http', 'ws') + '/ws', origin ? { origin } : {});
      socket.on('open', () => {
        socket.close();
        resolve('open');
      });
      socket.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      socket.on('error', () => resolve('error'));
    });
  t.equal(await ws('https://evil.example'), '403', 'WebSocket from a foreign page');
  t.equal(await ws(), 'open', 'WebSocket without Origin (not a page)');
  t.equal(await ws(`http://${host}`), 'open', "WebSocket from the gateway's own page");

  const preflight = await fetch(gw.baseUrl + '/whip/cam2', {
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example' },
  });
  t.equal(preflight.status, 204);
  t.equal(preflight.headers.get('access-control-allow-origin'), '*');
});

t.test('pages carry security headers and a CSP the SDK works under', async (t) => {
  const page = await fetch(gw.baseUrl + '/');
  t.match(
    page.headers.get('content-security-policy'),
    /default-src 'self'.*script-src 'self'.*connect-src 'self'.*frame-ancestors 'none'/,
  );
  t.equal(page.headers.get('x-content-type-options'), 'nosniff');
  t.equal(page.headers.get('x-frame-options'), 'DENY');
  t.notMatch(await page.text(), /<script>|<script type="module">/, 'no inline script');
  const sdk = await fetch(gw.baseUrl + '/sdk/gateway.js');
  t.equal(sdk.headers.get('access-control-allow-origin'), '*', 'the SDK loads on other origins');
});

t.test(
  'off loopback, the gateway refuses to start without keys, naming them, unless auth is off on purpose',
  async (t) => {
    t.throws(() => createAccessControl(parseConfig({ http_host: '0.0.0.0' })), {
      name: 'ConfigError',
      message: /api_keys/,
    });
    t.doesNotThrow(() => createAccessControl(parseConfig({ http_host: '0.0.0.0', api_auth_disabled: true })));
    t.doesNotThrow(() =>
      createAccessControl(parseConfig({ http_host: '0.0.0.0', api_keys: [{ id: 'k', secret_env: 'TEST_KEY' }] }), {
        TEST_KEY: 'x'.repeat(20),
      }),
    );
    t.throws(() => createAccessControl(parseConfig({ api_keys: [{ id: 'k', secret_env: 'TEST_KEY' }] }), {}), {
      message: /api_keys\.0: environment variable TEST_KEY is not set/,
    });
    t.throws(() => parseConfig({ api_keys: [{ id: 'k', secret: 'short' }] }), {
      message: /api_keys\.0\.secret: must be at least 16/,
    });
    t.throws(() => parseConfig({ api_keys: [{ id: 'k' }] }), { message: /give exactly one of secret/ });
  },
);

t.test(
  'failed authentications are rate limited per client: 429 with Retry-After, even for the right key',
  async (t) => {
    const limited = await startGateway({
      api_keys: [{ id: 'k', secret: CONTROL, scope: ['control'] }],
      auth_failures_per_minute: 3,
    });
    t.teardown(() => limited.close());
    const post = (token: string): Promise<Response> =>
      fetch(limited.baseUrl + '/rest-api/push/find_all', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    for (let i = 0; i < 3; i++) t.equal((await post('guess-guess-guess-' + i)).status, 401);
    const blocked = await post(CONTROL);
    t.equal(blocked.status, 429);
    t.ok(Number(blocked.headers.get('retry-after')) > 0, `Retry-After ${blocked.headers.get('retry-after')}`);
  },
);
