import t from 'tap';
import WebSocket from 'ws';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../../kit/processes.js';
import { IDLE_CLOSE_CODE } from '../../src/signaling/protocol.js';

// Long-lived sessions a caller can hold open are bounded per client address and in total, even
// for callers with a valid key: console event streams and SDK WebSockets.

const CONTROL = 'control-key-0123456789abcdef';

/** Opens the console's event stream; answers its status and a function that closes it. */
async function openEvents(
  baseUrl: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; retryAfter: string | null; close: () => void }> {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/rest-api/console/events`, {
    headers: { authorization: `Bearer ${CONTROL}`, ...headers },
    signal: abort.signal,
  });
  if (res.status !== 200) await res.body?.cancel();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), close: () => abort.abort() };
}

t.test('console event streams: per client address 429, in total 503, a closed one frees its place', async (t) => {
  const gw = await startGateway({
    api_keys: [{ id: 'ops', secret: CONTROL, scope: ['control'] }],
    limit_console_streams_per_client: 2,
    limit_console_streams: 3,
    trust_proxy: true, // client addresses from X-Forwarded-For: several clients from one test
  });
  t.teardown(() => gw.close());
  const from = (client: string) => ({ 'x-forwarded-for': client });
  const a1 = await openEvents(gw.baseUrl, from('192.0.2.1'));
  const a2 = await openEvents(gw.baseUrl, from('192.0.2.1'));
  t.equal(a1.status, 200);
  t.equal(a2.status, 200);
  const a3 = await openEvents(gw.baseUrl, from('192.0.2.1'));
  t.equal(a3.status, 429, 'a third from one address');
  t.ok(Number(a3.retryAfter) >= 1);
  const b1 = await openEvents(gw.baseUrl, from('192.0.2.2'));
  t.equal(b1.status, 200, 'another address');
  const c1 = await openEvents(gw.baseUrl, from('192.0.2.3'));
  t.equal(c1.status, 503, 'past the total');
  a1.close();
  // The gateway learns of the closed stream when its socket closes: ask until it has.
  const again = await waitFor(
    "the closed stream's place to be free",
    async () => {
      const attempt = await openEvents(gw.baseUrl, from('192.0.2.3'));
      return attempt.status === 200 ? attempt : undefined;
    },
    15000,
  );
  t.equal(again.status, 200, 'a closed stream frees its place');
  for (const s of [a2, b1, again]) s.close();
});

function connect(baseUrl: string): Promise<{ ws: WebSocket; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(baseUrl.replace('http', 'ws') + '/ws');
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (_req, res) => {
      resolve({ ws, status: res.statusCode });
      res.resume();
    });
    ws.on('error', () => {});
  });
}

t.test('SDK WebSockets: capped in total (503); a closed one frees its place', async (t) => {
  const gw = await startGateway({ limit_signaling_sessions: 2 });
  t.teardown(() => gw.close());
  const first = await connect(gw.baseUrl);
  const second = await connect(gw.baseUrl);
  t.equal(first.status, undefined, 'the first is accepted');
  t.equal(second.status, undefined, 'the second is accepted');
  const third = await connect(gw.baseUrl);
  t.equal(third.status, 503, 'the third is refused: limit_signaling_sessions');
  first.ws.close();
  const later = await waitFor(
    "the closed session's place to be free",
    async () => {
      const attempt = await connect(gw.baseUrl);
      return attempt.status === undefined ? attempt : undefined;
    },
    15000,
  );
  t.pass('closed sessions free their places');
  second.ws.close();
  later.ws.close();
});

t.test(
  'an SDK WebSocket that publishes nothing within signaling_idle_timeout_ms is closed with the idle code',
  async (t) => {
    const gw = await startGateway({ signaling_idle_timeout_ms: 1000 });
    t.teardown(() => gw.close());
    const { ws } = await connect(gw.baseUrl);
    const closed = await new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    t.equal(closed.code, IDLE_CLOSE_CODE, 'closed for publishing nothing');
    t.match(closed.reason, /signaling_idle_timeout_ms/);
  },
);
