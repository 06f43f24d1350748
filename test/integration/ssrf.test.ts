import { createServer, type Server } from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { buildGateway } from '../../src/gateway/gateway.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/log.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { testFixture } from '../helpers/synthetic.js';

// The destination policy against server-side request forgery: listeners the test owns on loopback
// addresses count every connection the gateway makes; refused destinations must make none.

/** A TCP listener counting connections, standing in for an internal service. */
async function listener(host: string): Promise<{ server: Server; port: number; connections: number }> {
  const server = createServer();
  const state = { server, port: 0, connections: 0 };
  server.on('connection', (socket) => {
    state.connections++;
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  state.port = (server.address() as { port: number }).port;
  return state;
}

const lookups: string[] = [];
/** DNS as the test wants it: names pointing at internal addresses, one with mixed answers, one that changes. */
let rebindAnswer = ['127.0.0.2'];
async function lookup(host: string): Promise<string[]> {
  lookups.push(host);
  const answers: Record<string, string[]> = {
    'loopback.attacker.example': ['127.0.0.1'],
    'metadata.attacker.example': ['169.254.169.254'],
    'mixed.attacker.example': ['142.250.1.1', '127.0.0.1'],
    'private.attacker.example': ['10.0.0.1'],
  };
  if (host === 'rebind.attacker.example') {
    const now = rebindAnswer;
    rebindAnswer = ['169.254.169.254'];
    return now;
  }
  if (answers[host]) return answers[host];
  throw new Error('ENOTFOUND');
}

function gateway(overrides: Record<string, unknown> = {}) {
  const config = parseConfig({
    http_port: 0,
    log_level: 'silent',
    webrtc_ice_addresses: ['127.0.0.1'],
    webrtc_ice_remote_networks: ['127.0.0.0/8'],
    workers: 0,
    overload_machine_cpu_percent: 0,
    ...overrides,
  });
  return buildGateway(config, createLogger('silent'), { lookupHost: lookup });
}

const local = await listener('127.0.0.1');
const second = await listener('127.0.0.2');
t.teardown(() => {
  local.server.close();
  second.server.close();
});

t.test('by default, internal destinations are 400 naming rtmpUrl and the rule, and nothing connects', async (t) => {
  const gw = gateway();
  t.teardown(() => gw.close());
  // A publishing stream: names are looked up only for a push that could start.
  const publisher = await SyntheticPublisher.publish(
    testFixture(),
    await gw.app.listen({ host: '127.0.0.1', port: 0 }),
    'cam',
  );
  t.teardown(() => publisher.stop());
  const p = local.port;
  const cases: [string, RegExp][] = [
    [`rtmp://169.254.169.254/latest`, /link-local address, never allowed/],
    [`rtmp://0.0.0.0:${p}/live`, /unspecified/],
    [`rtmp://[::]:${p}/live`, /unspecified/],
    [`rtmp://[::1]:${p}/live`, /loopback address, not allowed \(set destination_allow_loopback/],
    [`rtmp://127.0.0.1:${p}/live`, /loopback/],
    [`rtmp://127.1:${p}/live`, /loopback/],
    [`rtmp://2130706433:${p}/live`, /loopback/],
    [`rtmp://0x7f000001:${p}/live`, /loopback/],
    [`rtmp://[::ffff:127.0.0.1]:${p}/live`, /loopback/],
    [`rtmp://localhost:${p}/live`, /does not resolve|loopback/],
    [`rtmp://10.0.0.1/live`, /private address, not allowed \(set destination_allow_private/],
    [`rtmp://loopback.attacker.example:${p}/live`, /host loopback.attacker.example resolves to a loopback address/],
    [`rtmp://metadata.attacker.example/live`, /link-local/],
    [`rtmp://mixed.attacker.example:${p}/live`, /loopback/],
    [`rtmp://224.0.0.1/live`, /multicast/],
  ];
  for (const [rtmpUrl, message] of cases) {
    const res = await gw.app.inject({
      method: 'POST',
      url: '/rest-api/push/startup',
      payload: { streamName: 'cam', rtmpUrl },
    });
    t.equal(res.statusCode, 400, rtmpUrl);
    t.match(res.json(), { field: 'rtmpUrl', message }, rtmpUrl);
    t.notMatch(
      res.json().message,
      /142\.250|10\.0\.0\.1.*resolves/,
      'the message names the rule, not where a name points',
    );
  }
  t.equal(local.connections + second.connections, 0, 'no connection reached the listeners');
});

t.test("the SDK's rtmpUrl is checked before anything is published", async (t) => {
  const gw = gateway();
  t.teardown(() => gw.close());
  const address = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  const ws = new WebSocket(address.replace('http', 'ws') + '/ws');
  const replies: any[] = [];
  ws.on('message', (d) => replies.push(JSON.parse(String(d as Buffer))));
  await new Promise((r) => ws.once('open', r));
  ws.send(
    JSON.stringify({
      type: 'publish',
      requestId: '1',
      name: 'cam',
      sdp: 'v=0',
      rtmpUrl: 'rtmp://metadata.attacker.example/live',
    }),
  );
  for (let i = 0; i < 100 && replies.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  ws.close();
  t.match(replies[1], { type: 'error', field: 'rtmpUrl', message: /link-local/ });
  t.equal(gw.local!.publishers.all().length, 0);
});

t.test('allowed ports and denied hosts refuse before any lookup', async (t) => {
  const gw = gateway({ destination_allowed_ports: [1935, 443], destination_denied_hosts: ['*.attacker.example'] });
  t.teardown(() => gw.close());
  lookups.length = 0;
  const port = await gw.app.inject({
    method: 'POST',
    url: '/rest-api/push/startup',
    payload: { streamName: 'cam', rtmpUrl: 'rtmp://a.rtmp.youtube.com:22/live' },
  });
  t.match(port.json(), { field: 'rtmpUrl', message: /port 22 is not allowed/ });
  const denied = await gw.app.inject({
    method: 'POST',
    url: '/rest-api/push/startup',
    payload: { streamName: 'cam', rtmpUrl: 'rtmp://x.attacker.example/live' },
  });
  t.match(denied.json(), { field: 'rtmpUrl', message: /denied/ });
  t.same(lookups, [], 'nothing was looked up');
});

t.test('one lookup, pinned: the connection goes to the checked address even when the name then changes', async (t) => {
  const receiver = await RtmpReceiver.start(0, '127.0.0.2');
  const gw = gateway({ destination_allow_loopback: true });
  t.teardown(async () => {
    await gw.close();
    await receiver.close();
  });
  const address = await gw.app.listen({ host: '127.0.0.1', port: 0 });
  const publisher = await SyntheticPublisher.publish(testFixture(), address, 'pinned');
  t.teardown(() => publisher.stop());
  lookups.length = 0;
  const res = await gw.app.inject({
    method: 'POST',
    url: '/rest-api/push/startup',
    payload: { streamName: 'pinned', rtmpUrl: `rtmp://rebind.attacker.example:${receiver.port}/live` },
  });
  t.equal(res.statusCode, 200, JSON.stringify(res.json()));
  t.same(lookups, ['rebind.attacker.example'], 'looked up once');
  t.equal(receiver.connections, 1, 'connected to the address that was checked');
  // A reconnect looks up again: the name now points at the metadata address, which is refused.
  receiver.dropAll();
  const id = res.json().mediaSessionId;
  for (let i = 0; i < 100 && !/link-local/.test(gw.local!.pushes.get(id).lastError ?? ''); i++)
    await new Promise((r) => setTimeout(r, 50));
  t.match(gw.local!.pushes.get(id).lastError, /link-local/, "the reconnect's answer was checked and refused");
  t.equal(receiver.connections, 1, 'no further connection');
});
