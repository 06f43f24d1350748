import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import t from 'tap';
import WebSocket from 'ws';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { testFixture } from '../helpers/synthetic.js';

// Publish authorization: publish keys, JWTs (HS256, ES256, RS256), the HTTP hook; WHIP and the SDK.

const HS_SECRET = 'hs256-shared-secret-0123456789';
const PUBLISH_KEY = 'studio-publish-key-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'jwt-keys-'));
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
writeFileSync(join(dir, 'ec.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
writeFileSync(join(dir, 'rsa.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));

let gw: TestGateway;
t.before(async () => {
  gw = await startGateway({
    api_keys: [{ id: 'backend', secret: 'control-key-0123456789abcdef', scope: ['control', 'metrics'] }],
    publish_keys: [
      {
        id: 'studio',
        secret: PUBLISH_KEY,
        streams: ['studio-*'],
        destinations: ['*.youtube.com'],
        view: false,
        mixers: ['studio-*'],
      },
    ],
    publish_jwt_keys: [
      { id: 'hs', alg: 'HS256', secret: HS_SECRET },
      { id: 'es', alg: 'ES256', public_key_file: join(dir, 'ec.pem') },
      { id: 'rs', alg: 'RS256', public_key_file: join(dir, 'rsa.pem') },
    ],
    auth_failures_per_minute: 1000,
  });
});
t.teardown(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Claims = Record<string, unknown>;
async function jwt(
  claims: Claims,
  options: {
    kid?: string;
    alg?: string;
    key?: unknown;
    exp?: string | number | null;
    nbf?: string | number;
    iat?: boolean;
  } = {},
): Promise<string> {
  const alg = options.alg ?? 'HS256';
  const key =
    options.key ??
    (alg === 'HS256' ? new TextEncoder().encode(HS_SECRET) : alg === 'ES256' ? ec.privateKey : rsa.privateKey);
  let builder = new SignJWT(claims).setProtectedHeader({
    alg,
    kid: options.kid ?? { HS256: 'hs', ES256: 'es', RS256: 'rs' }[alg],
  });
  if (options.iat !== false) builder = builder.setIssuedAt();
  if (options.exp !== null) builder = builder.setExpirationTime(options.exp ?? '5m');
  if (options.nbf !== undefined) builder = builder.setNotBefore(options.nbf);
  return builder.sign(key as Parameters<SignJWT['sign']>[0]);
}

const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A WHIP POST with a placeholder offer: past authorization it fails on the offer (400), before it on the token. */
async function whip(stream: string, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.baseUrl}/whip/${stream}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: 'v=0\r\n',
  });
  return { status: res.status, body: await res.json() };
}

t.test(
  'WHIP: no token and bad tokens are 401, a token for another stream 403; good ones reach the offer',
  async (t) => {
    const cases: [string, string | undefined, number, RegExp][] = [
      ['no token', undefined, 401, /needs a token/],
      ['unknown opaque token', 'not-a-real-token-at-all', 401, /not valid/],
      ['expired', await jwt({ streams: ['cam'] }, { exp: Math.floor(Date.now() / 1000) - 60 }), 401, /expired/],
      [
        'not yet valid',
        await jwt({ streams: ['cam'] }, { nbf: Math.floor(Date.now() / 1000) + 600 }),
        401,
        /not valid yet/,
      ],
      ['no expiry', await jwt({ streams: ['cam'] }, { exp: null }), 401, /no expiry/],
      ['valid for two days', await jwt({ streams: ['cam'] }, { exp: '2d' }), 401, /publish_jwt_max_lifetime_s: 86400/],
      [
        'valid for two days, no iat',
        await jwt({ streams: ['cam'] }, { exp: '2d', iat: false }),
        401,
        /publish_jwt_max_lifetime_s/,
      ],
      ['wrong stream', await jwt({ streams: ['other-*'] }), 403, /does not allow publishing stream cam/],
      [
        'bad signature',
        await jwt({ streams: ['cam'] }, { key: new TextEncoder().encode('another-secret-0123456789abc') }),
        401,
        /signature/,
      ],
      [
        'alg none',
        `${b64({ alg: 'none', kid: 'hs' })}.${b64({ streams: ['cam'], exp: Math.floor(Date.now() / 1000) + 300 })}.`,
        401,
        /algorithm|malformed/,
      ],
      ['another key id', await jwt({ streams: ['cam'] }, { kid: 'retired' }), 401, /unknown key id/],
      ['HS256 token claiming RS256 key', await jwt({ streams: ['cam'] }, { kid: 'rs' }), 401, /algorithm/],
      ['no streams claim', await jwt({}), 401, /streams/],
      [
        'a key id that is no string',
        `${b64({ alg: 'HS256', kid: 7 })}.${b64({ streams: ['cam'] })}.c2ln`,
        401,
        /key id/,
      ],
      ['a header that is no JSON', 'bm90IGpzb24.e30.c2ln', 401, /malformed/],
      ['publish key, stream outside its pattern', PUBLISH_KEY, 403, /does not allow publishing stream cam/],
    ];
    for (const [what, token, status, message] of cases) {
      const res = await whip('cam', token);
      t.equal(res.status, status, what);
      t.match(res.body.message, message, `${what}: ${res.body.message}`);
    }
    for (const [what, token] of [
      ['HS256', await jwt({ streams: ['cam'] })],
      ['HS256 valid for a day', await jwt({ streams: ['cam'] }, { exp: '23h' })],
      ['ES256', await jwt({ streams: ['c*'] }, { alg: 'ES256' })],
      ['RS256', await jwt({ stream: 'cam' }, { alg: 'RS256' })],
      ['control key', 'control-key-0123456789abcdef'],
    ] as const) {
      const res = await whip('cam', token);
      t.equal(res.status, 400, `${what}: authorized, then the placeholder offer is refused`);
      t.equal(res.body.field, 'offer');
    }
    t.equal((await whip('studio-a', PUBLISH_KEY)).body.field, 'offer', 'publish key within its pattern');
    t.equal(gw.publishers.all().length, 0, 'nothing was published');
  },
);

t.test('a real publish with a JWT; its WHIP DELETE needs a token too', async (t) => {
  const token = await jwt({ streams: ['jwt-cam'] }, { alg: 'ES256' });
  const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'jwt-cam', { token });
  t.teardown(() => publisher.stop());
  const resource = `/whip/jwt-cam/${gw.publishers.get('jwt-cam')!.id}`;
  t.equal((await fetch(gw.baseUrl + resource, { method: 'DELETE' })).status, 401);
  t.ok(gw.publishers.get('jwt-cam'), 'still publishing');
  t.equal(
    (await fetch(gw.baseUrl + resource, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status,
    200,
  );
  t.equal(gw.publishers.get('jwt-cam'), undefined);
});

/** Sends SDK publish messages on one WebSocket and answers each reply. */
async function sdk(): Promise<{ send: (m: object) => Promise<any>; close: () => void }> {
  const ws = new WebSocket(gw.baseUrl.replace('http', 'ws') + '/ws');
  const replies: any[] = [];
  ws.on('message', (d) => replies.push(JSON.parse(String(d as Buffer))));
  await new Promise((r) => ws.once('open', r));
  return {
    async send(message) {
      const start = replies.length;
      ws.send(JSON.stringify(message));
      for (let i = 0; i < 150 && replies.length === start; i++) await new Promise((r) => setTimeout(r, 20));
      return replies.at(-1);
    },
    close: () => ws.close(),
  };
}

t.test(
  'SDK: the token goes in the publish message; destinations the token does not grant are 403 naming rtmpUrl',
  async (t) => {
    const session = await sdk();
    t.teardown(session.close);
    const publish = (token: string | undefined, rtmpUrl?: string): Promise<any> =>
      session.send({
        type: 'publish',
        requestId: 'r',
        name: 'cam',
        sdp: 'v=0',
        ...(token ? { token } : {}),
        ...(rtmpUrl ? { rtmpUrl } : {}),
      });
    t.match(await publish(undefined), { type: 'error', code: 'unauthorized', field: 'token' }, 'no token');
    t.match(
      await publish('wrong-token-0123456789'),
      { type: 'error', code: 'unauthorized', field: 'token', message: /not valid/ },
      'a wrong token',
    );
    t.match(
      await publish(PUBLISH_KEY.replace('studio', 'studia')),
      { code: 'unauthorized' },
      'a near miss of a publish key',
    );
    t.match(
      await publish(await jwt({ streams: ['cam'] })),
      { code: 'invalid_request', field: 'sdp' },
      'the right token: on to the offer',
    );
    t.match(
      await publish(await jwt({ streams: ['cam'] }), 'rtmp://127.0.0.1/live'),
      { code: 'forbidden', field: 'rtmpUrl', message: /does not allow pushing/ },
      'default grant: no destination',
    );
    t.match(await publish(await jwt({ streams: ['cam'], destinations: ['*.youtube.com'] }), 'rtmp://127.0.0.1/live'), {
      code: 'forbidden',
      field: 'rtmpUrl',
    });
    t.match(
      await publish(await jwt({ streams: ['cam'], destinations: ['127.0.0.1'] }), 'rtmp://127.0.0.1/live'),
      { code: 'invalid_request', field: 'sdp' },
      'granted host: authorized',
    );
    t.match(
      await publish(await jwt({ streams: ['cam'], destinations: 'any' }), 'rtmp://127.0.0.1/live'),
      { field: 'sdp' },
      'any destination',
    );
    t.match(
      await publish(await jwt({ streams: ['cam'], destinations: ['127.0.0.1'] }), 'record://'),
      { code: 'forbidden', field: 'rtmpUrl' },
      'recording needs its own grant',
    );
    t.match(
      await publish(await jwt({ streams: ['cam'], destinations: ['record'] }), 'record://'),
      { code: 'invalid_request', field: 'sdp' },
      '`record` among the destinations: authorized',
    );
    t.match(await publish(await jwt({ streams: ['cam'], destinations: 'everywhere' })), {
      code: 'unauthorized',
      message: /destinations/,
    });
    t.equal(gw.publishers.all().length, 0);
  },
);

t.test('with control keys set and no publish authorization, anonymous publishers cannot push anywhere', async (t) => {
  const open = await startGateway({
    api_keys: [{ id: 'backend', secret: 'control-key-0123456789abcdef', scope: ['control'] }],
  });
  t.teardown(() => open.close());
  const ws = new WebSocket(open.baseUrl.replace('http', 'ws') + '/ws');
  const replies: any[] = [];
  ws.on('message', (d) => replies.push(JSON.parse(String(d as Buffer))));
  await new Promise((r) => ws.once('open', r));
  t.teardown(() => ws.close());
  ws.send(
    JSON.stringify({ type: 'publish', requestId: 'r', name: 'cam', sdp: 'v=0', rtmpUrl: 'rtmp://127.0.0.1/live' }),
  );
  for (let i = 0; i < 100 && replies.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  t.match(replies[1], {
    type: 'error',
    code: 'forbidden',
    field: 'rtmpUrl',
    message: /anonymous publishers may not choose a destination/,
  });
});

t.test('the HTTP hook decides what no key covers: 2xx allows, 401/403 refuse, silence is 503', async (t) => {
  const seen: any[] = [];
  let hang = false;
  const hook = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const request = JSON.parse(body);
      seen.push(request);
      if (hang) return;
      res.statusCode = request.token === 'hook-allows-this-token' ? 204 : request.token ? 403 : 401;
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/auth`;
  const hooked = await startGateway({ publish_auth_url: url, publish_auth_timeout_ms: 500 });
  t.teardown(async () => {
    await hooked.close();
    hook.closeAllConnections();
    hook.close();
  });
  const post = async (token?: string): Promise<number> =>
    (
      await fetch(`${hooked.baseUrl}/whip/hooked`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: 'v=0',
      })
    ).status;
  t.equal(await post('hook-allows-this-token'), 400, 'allowed: on to the offer');
  t.equal(await post('hook-refuses-this-token'), 403);
  t.equal(await post(), 401);
  t.match(seen[0], {
    action: 'publish',
    stream: 'hooked',
    clientAddress: '127.0.0.1',
    token: 'hook-allows-this-token',
    destination: null,
  });
  hang = true;
  t.equal(await post('hook-allows-this-token'), 503, 'the hook does not answer in time');
  t.equal(hooked.publishers.all().length, 0);
});

t.test("the hook's refusals count as failed authentications: guessing through it ends in 429", async (t) => {
  let asked = 0;
  const hook = createServer((req, res) => {
    asked++;
    req.resume();
    req.on('end', () => {
      res.statusCode = 403;
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hooked = await startGateway({
    publish_auth_url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/auth`,
    auth_failures_per_minute: 5,
  });
  t.teardown(async () => {
    await hooked.close();
    hook.closeAllConnections();
    hook.close();
  });
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await fetch(`${hooked.baseUrl}/whip/guess`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer guess-${i}` },
      body: 'v=0',
    });
    statuses.push(res.status);
    if (res.status === 429) t.ok(Number(res.headers.get('retry-after')) >= 1, 'Retry-After');
  }
  t.same(statuses, [403, 403, 403, 403, 403, 429, 429, 429], 'five refusals, then 429 before the hook is asked');
  t.equal(asked, 5, 'the hook was asked five times only');
});

t.test('WHEP: watching takes the control key or a token with a view grant', async (t) => {
  /** Past authorization a viewer of a stream not publishing gets 404; before it, the token's refusal. */
  const whep = async (token?: string): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${gw.baseUrl}/whep/cam`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: 'v=0\r\n',
    });
    return { status: res.status, body: await res.json() };
  };
  t.match(await whep(), { status: 401, body: { message: /watching needs the control key or a view token/ } });
  t.match(await whep('control-key-0123456789abcdef'), { status: 404 }, 'the control key: authorized');
  t.match(
    await whep(await jwt({ streams: ['cam'], view: true })),
    { status: 404 },
    'a JWT with "view": true: authorized',
  );
  t.match(
    await whep(await jwt({ streams: ['cam'] })),
    { status: 403, body: { message: /does not allow watching/ } },
    'a JWT to publish only',
  );
  t.match(
    await whep(await jwt({ streams: ['other'], view: true })),
    { status: 403, body: { message: /watching stream cam/ } },
    'a view grant for another stream',
  );
  t.match(await whep(await jwt({ streams: ['cam'], view: 'yes' })), { status: 401, body: { message: /"view" claim/ } });
  t.match(await whep(await jwt({ streams: ['cam'], view: true, mixers: 'show' })), {
    status: 401,
    body: { message: /"mixers" claim must be a list/ },
  });
  t.match(
    await whep(await jwt({ streams: ['cam'], view: true, mixers: ['show', 'room-*'] })),
    { status: 404 },
    'a list of mixer names and patterns is taken',
  );
  t.match(await whep(PUBLISH_KEY), { status: 403 }, 'a publish key without view');
});
