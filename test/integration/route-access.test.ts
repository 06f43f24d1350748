import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { ERROR_CODES } from '../../src/core/errors.js';
import t from 'tap';
import fc from 'fast-check';
import Fastify from 'fastify';
import { installGuard } from '../../src/http/guard.js';
import { createAccessControl } from '../../src/security/access.js';
import { parseConfig } from '../../src/config/load.js';
import type { RouteEntry } from '../../src/http/route-table.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

// Access is decided by the route the router matched: every registered route, every credential
// state, and the same request with its path spelled otherwise must get the same answer as the plain
// spelling (or the router's own 404 or 405), and never reach a control or metrics handler without
// the right key. The spellings are generated over the route table, so a new route is covered as it is.

const CONTROL = 'control-only-key-0123456789abcdef';
const METRICS = 'metrics-only-key-0123456789abcdef';
const WRONG = 'wrong-key-0123456789abcdef0123';

type Credential = 'none' | 'wrong' | 'wrong scope' | 'right';
const CREDENTIALS: readonly Credential[] = ['none', 'wrong', 'wrong scope', 'right'];

function tokenFor(entry: RouteEntry, credential: Credential): string | undefined {
  if (credential === 'none') return undefined;
  if (credential === 'wrong') return WRONG;
  const right = entry.access === 'metrics' ? METRICS : CONTROL;
  if (credential === 'right') return right;
  return right === CONTROL ? METRICS : CONTROL;
}

/** A route's path with its parameters filled in (`/whip/:streamName` → `/whip/cam`). */
const concrete = (url: string): string => url.replace(/:streamName/g, 'cam').replace(/:sessionId/g, 'session-1');

interface Answer {
  status: number;
  /** The error code and message of an error answer, or the content type of any other. */
  what: string;
}

let gw: TestGateway;
let port: number;
t.before(async () => {
  gw = await startGateway({
    api_keys: [
      { id: 'backend', secret: CONTROL, scope: ['control'] },
      { id: 'prometheus', secret: METRICS, scope: ['metrics'] },
    ],
    // Thousands of refused requests from one address: the failure limit is tested elsewhere.
    auth_failures_per_minute: 10000,
  });
  port = Number(new URL(gw.baseUrl).port);
});
t.teardown(() => gw?.close());

/** One request over a real socket, the path sent exactly as written (no client-side normalising). */
function send(method: string, path: string, token: string | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const withBody = method === 'POST' || method === 'PATCH';
    let answered = false;
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(withBody ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        answered = true;
        const type = String(res.headers['content-type'] ?? '');
        // The console's event stream stays open, and a HEAD answer has no body (a refusal made before
        // the method was parsed may still send one): the status line is the answer.
        if (type.startsWith('text/event-stream') || method === 'HEAD') {
          res.destroy();
          return resolve({ status: res.statusCode!, what: type.split(';')[0]! });
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          let what = type.split(';')[0]!;
          const text = Buffer.concat(chunks).toString();
          // HEAD answers carry no body: the status and type are the answer.
          if (res.statusCode! >= 400 && type.startsWith('application/json') && text !== '') {
            const body = JSON.parse(text) as { error: string; message: string };
            what = `${body.error}: ${body.message}`;
          }
          resolve({ status: res.statusCode!, what });
        });
      },
    );
    req.on('error', (error) => (answered ? undefined : reject(error)));
    req.end(withBody ? '{}' : undefined);
  });
}

/**
 * Answers made before any route (the router's 404 and 405, a path it cannot decode, a request
 * target Node's parser refuses, such as one not starting with `/`). A HEAD answer has no body to
 * tell them by: its status and JSON type are all there is.
 */
function answeredByRouter(method: string, answer: Answer): boolean {
  if (method === 'HEAD') return [400, 404, 405].includes(answer.status) && answer.what === 'application/json';
  return /^(not_found: no such route|method_not_allowed: .*|invalid_request: path: .*|invalid_request: the request is not valid HTTP\/1\.1)$/.test(
    answer.what,
  );
}

/** A spelling of a path: each step rewrites the path text, never the route it should name. */
type Spelling = (path: string, at: number) => string;

const hex = (c: string, lower: boolean): string => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${lower ? h : h.toUpperCase()}`;
};
/** Index of a character of the path (not its leading slash), chosen by `at`. */
const pick = (path: string, at: number): number => 1 + (at % Math.max(1, path.length - 1));
/** Rewrites the character `pick` chooses; `/` alone has none to rewrite. */
const atCharacter = (p: string, at: number, rewrite: (c: string) => string): string => {
  const i = pick(p, at);
  return i >= p.length || p[i] === '%' ? p : p.slice(0, i) + rewrite(p[i]!) + p.slice(i + 1);
};
const SPELLINGS: Record<string, Spelling> = {
  'one character percent-encoded (upper-case hex)': (p, at) => atCharacter(p, at, (c) => hex(c, false)),
  'one character percent-encoded (lower-case hex)': (p, at) => atCharacter(p, at, (c) => hex(c, true)),
  'every character percent-encoded': (p) => '/' + [...p.slice(1)].map((c) => (c === '/' ? c : hex(c, false))).join(''),
  'a slash as %2F': (p, at) => {
    const slashes = [...p.matchAll(/\//g)].map((m) => m.index!);
    const i = slashes[at % slashes.length]!;
    return p.slice(0, i) + '%2F' + p.slice(i + 1);
  },
  'a doubled slash': (p, at) => {
    const slashes = [...p.matchAll(/\//g)].map((m) => m.index!);
    const i = slashes[at % slashes.length]!;
    return p.slice(0, i) + '/' + p.slice(i);
  },
  '/./ inserted': (p, at) => {
    const slashes = [...p.matchAll(/\//g)].map((m) => m.index!);
    const i = slashes[at % slashes.length]!;
    return p.slice(0, i) + '/.' + p.slice(i);
  },
  '/x/../ inserted': (p, at) => {
    const slashes = [...p.matchAll(/\//g)].map((m) => m.index!);
    const i = slashes[at % slashes.length]!;
    return p.slice(0, i) + '/x/..' + p.slice(i);
  },
  'a trailing slash': (p) => (p.endsWith('/') ? p : p + '/'),
  'a ;parameter': (p) => p + ';x=1',
  'a #fragment': (p) => p + '#x',
  'a ?query': (p) => p + '?x=1',
  'an empty ?': (p) => p + '?',
  'upper case': (p, at) => atCharacter(p, at, (c) => c.toUpperCase()),
};

t.test('a route that declares no access refuses to register: the gateway would not start', async (t) => {
  const app = Fastify();
  installGuard(app, createAccessControl(parseConfig({})).guard);
  t.throws(() => app.get('/undeclared', async () => 'open'), /declares no access/);
  t.throws(
    () => app.post('/wrongly-declared', { config: { access: 'everyone' as never } }, async () => 'open'),
    /declares no access/,
  );
  await app.close();
});

t.test('the spellings an attacker tried answer 401 without a key', async (t) => {
  for (const [method, path] of [
    ['POST', '/%72est-api/push/find_all'],
    ['POST', '/rest%2Dapi/push/startup'],
    ['POST', '/%72est-api/stream/snapshot'],
    ['GET', '/%72est-api/console/events'],
    ['GET', '/%6detrics'],
    ['GET', '/metric%73'],
    ['GET', '/metrics#'],
  ] as const) {
    const answer = await send(method, path, undefined);
    t.equal(answer.status, 401, `${method} ${path}: ${answer.what}`);
  }
});

t.test(
  "every route, every credential, every spelling: the plain answer or the router's, never a handler without the key",
  async (t) => {
    const entries = gw.routes.entries;
    t.ok(entries.length >= 30, `the route table lists ${entries.length} routes`);
    const plain = new Map<string, Answer>();
    for (const entry of entries) {
      for (const credential of CREDENTIALS) {
        const answer = await send(entry.method, concrete(entry.url), tokenFor(entry, credential));
        plain.set(`${entry.method} ${entry.url} ${credential}`, answer);
        const guarded = entry.access === 'control' || entry.access === 'metrics';
        if (guarded && credential !== 'right')
          t.equal(answer.status, 401, `${entry.method} ${entry.url} with ${credential}`);
        if (guarded && credential === 'right')
          t.not(answer.status, 401, `${entry.method} ${entry.url} with the right key`);
      }
    }
    const names = Object.keys(SPELLINGS);
    let differed = 0;
    let failures = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...entries),
        fc.constantFrom(...CREDENTIALS),
        fc.array(fc.tuple(fc.constantFrom(...names), fc.nat(64)), { minLength: 1, maxLength: 3 }),
        async (entry, credential, steps) => {
          const path = steps.reduce((p, [name, at]) => SPELLINGS[name]!(p, at), concrete(entry.url));
          const expected = plain.get(`${entry.method} ${entry.url} ${credential}`)!;
          const got = await send(entry.method, path, tokenFor(entry, credential));
          const same = got.status === expected.status && got.what === expected.what;
          const routers = answeredByRouter(entry.method, got);
          if (!same) differed++;
          const guarded = entry.access === 'control' || entry.access === 'metrics';
          const reachedWithoutKey = guarded && credential !== 'right' && got.status !== 401 && !routers;
          if ((!same && !routers) || reachedWithoutKey) {
            failures++;
            t.fail(
              `${entry.method} ${path} (${steps.map((s) => s[0]).join(', ')}) with ${credential}: ${got.status} ${got.what}; plain: ${expected.status} ${expected.what}`,
            );
          }
          return true;
        },
      ),
      { numRuns: 3000, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
    );
    t.equal(failures, 0, '3000 spellings: each answered as its plain form or by the router');
    t.ok(
      differed > 0,
      `${differed} spellings were told apart by the router (404/405/400), so the property is exercised`,
    );
  },
);

t.test("errors made by fastify and by Node's parser answer in the gateway's shape, with a listed code", async (t) => {
  /** A raw request over a socket: the status line and the parsed JSON body. */
  const raw = (request: string): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(request));
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('error', reject);
      socket.on('close', () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
        resolve({ status, body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4) || 'null') });
      });
    });
  const codes = new Set(ERROR_CODES as readonly string[]);
  const cases: [string, string, number, string, string?][] = [
    [
      'a 300-character WHIP name',
      `POST /whip/${'a'.repeat(300)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\nContent-Length: 3\r\nConnection: close\r\n\r\nv=0`,
      414,
      'uri_too_long',
      'path',
    ],
    [
      'headers over 16 KiB',
      `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`,
      431,
      'headers_too_large',
      'headers',
    ],
    [
      'a bad percent-encoding',
      'GET /%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
      400,
      'invalid_request',
      'path',
    ],
    ['not HTTP', 'HELLO THERE\r\n\r\n', 400, 'invalid_request'],
    [
      'JSON that does not parse',
      `POST /rest-api/push/find_all HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${CONTROL}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\n{bad`,
      400,
      'invalid_request',
      'body',
    ],
    [
      'a content type no route takes',
      `POST /rest-api/push/find_all HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${CONTROL}\r\nContent-Type: text/xml\r\nContent-Length: 4\r\nConnection: close\r\n\r\n<a/>`,
      415,
      'unsupported_media_type',
      'Content-Type',
    ],
    [
      'a body over 64 KiB',
      `POST /rest-api/push/find_all HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${CONTROL}\r\nContent-Type: application/json\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n${' '.repeat(70000)}`,
      413,
      'payload_too_large',
      'body',
    ],
    ['a path no route has', 'GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 404, 'not_found'],
    [
      'a method the path is not served with',
      'DELETE /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
      405,
      'method_not_allowed',
      'method',
    ],
  ];
  for (const [what, request, status, code, field] of cases) {
    const answer = await raw(request);
    t.equal(answer.status, status, what);
    t.match(answer.body, { error: code, message: String }, `${what}: ${JSON.stringify(answer.body)}`);
    if (field) t.equal(answer.body.field, field, `${what} names ${field}`);
    t.ok(codes.has(answer.body.error), `${code} is a listed error code`);
  }
  const res = await fetch(`${gw.baseUrl}/health`, { method: 'DELETE' });
  t.equal(res.headers.get('allow'), 'GET, HEAD', '405 lists the methods in Allow');
});
