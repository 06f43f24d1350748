import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeNodeEnv, DeployBalancer } from '../../kit/deploy-example.js';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { RedisServer } from '../../kit/redis-server.js';
import { freePorts, NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { testFixture } from '../helpers/synthetic.js';

// The example in deploy/ as it is written, short of Docker: the three nodes get the settings
// compose.yml gives them, and Debian's nginx runs deploy/nginx.conf before them. The compose
// network's names and addresses stand for loopback here: `redis:6379` is the test's Redis, each
// `nodeN:8080` a node's own port, and the balancer's fixed address (the one the nodes trust to
// forward a client's) is 127.0.0.1, where nginx connects to the nodes from.

const KEY = 'deploy-backend-key-0123456789';
const STREAM_KEY = 'SKEYdeploy7781';
const runDir = await mkdtemp(join(tmpdir(), 'gateway-deploy-'));
const redis = await RedisServer.start({ persist: true });
const rtmp = await NginxRtmp.start();
const ids = ['node1', 'node2', 'node3'];
const ports = await freePorts(ids.length);
const address = (id: string): string => `127.0.0.1:${ports[ids.indexOf(id)]}`;
const settings = await composeNodeEnv(
  { PUBLIC_IP: '127.0.0.1', GATEWAY_CLUSTER_SECRET: 'deploy-cluster-secret-0123456789', GATEWAY_BACKEND_KEY: KEY },
  {
    'redis://redis:6379': redis.url,
    '172.28.0.2/32': '127.0.0.1/32',
    ...Object.fromEntries(ids.map((id) => [`http://${id}:8080`, `http://${address(id)}`])),
  },
);
const nodes = new Map<string, GatewayProcess>();
const publishers: SyntheticPublisher[] = [];
let balancer: DeployBalancer | undefined;
t.teardown(async () => {
  for (const p of publishers) await p.vanish().catch(() => {});
  await balancer?.stop();
  for (const node of nodes.values()) await node.stop();
  await stopAllProcesses();
  await rtmp.stop();
  await redis.close();
  if (!process.env.KEEP_LOGS) await rm(runDir, { recursive: true, force: true });
});

if ([...settings.keys()].join() !== ids.join())
  throw new Error(`compose.yml has nodes ${[...settings.keys()].join(', ')}: the test expects ${ids.join(', ')}`);
for (const id of ids) {
  const env = {
    ...settings.get(id)!,
    GATEWAY_HTTP_PORT: address(id).split(':')[1]!,
    GATEWAY_RUN_DIR: runDir,
    GATEWAY_LOG_LEVEL: 'info',
  };
  nodes.set(
    id,
    await GatewayProcess.start(join(runDir, `${id}.log`), env, ['--import', 'tsx'], 'kit/server-from-source.ts'),
  );
}
balancer = await DeployBalancer.start(Object.fromEntries(ids.map((id) => [id, address(id)])));
const lb = balancer;

/** A REST call through the balancer, with the backend's key unless `key` is false; a GET when `body` is null. */
async function call(path: string, body: unknown = {}, key = true): Promise<{ status: number; body: any }> {
  const response = await fetch(lb.url + path, {
    method: body === null ? 'GET' : 'POST',
    headers: {
      ...(body === null ? {} : { 'content-type': 'application/json' }),
      ...(key ? { authorization: `Bearer ${KEY}` } : {}),
    },
    body: body === null ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** A WHIP offer posted to the balancer from `from` (another loopback address), with a header that claims yet another client. */
function whipFrom(
  from: string,
  name: string,
  offer: string,
): Promise<{ status: number; location?: string; answer: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: lb.port,
        localAddress: from,
        method: 'POST',
        path: `/whip/${name}`,
        headers: { 'content-type': 'application/sdp', 'x-forwarded-for': '198.51.100.7' },
      },
      (res) => {
        let answer = '';
        res.setEncoding('utf8').on('data', (d: string) => (answer += d));
        res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location, answer }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(offer);
  });
}

t.test('through the balancer: the nodes see each other, and the REST API asks for the key', async (t) => {
  await waitFor(
    'three nodes',
    async () => (await call('/rest-api/cluster/nodes', null).catch(() => undefined))?.body?.nodes?.length === 3,
    10_000,
  );
  t.equal((await call('/rest-api/push/find_all', {}, false)).status, 401, 'no key: 401');
});

t.test(
  'a WHIP publish through the balancer: placed at a node, the client seen as itself, not as what its header claims',
  async (t) => {
    let location: string | undefined;
    const publisher = await SyntheticPublisher.publish(testFixture(), lb.url, 'deploy', {
      exchange: async (offer) => {
        const reply = await whipFrom('127.0.0.2', 'deploy', offer);
        if (reply.status !== 201)
          throw new Error(`WHIP through the balancer answered ${reply.status}: ${reply.answer}`);
        location = reply.location;
        return reply.answer;
      },
    });
    publishers.push(publisher);
    t.match(
      location,
      /^\/whip\//,
      'the session resource is a path on the same origin: its DELETE goes through the balancer too',
    );
    const stream = await waitFor(
      'the stream listed',
      async () => (await call('/rest-api/stream/find_all')).body?.find?.((s: { name: string }) => s.name === 'deploy'),
      10_000,
    );
    t.equal(stream.clientAddress, '127.0.0.2', 'the client address is the one the balancer saw, not 198.51.100.7');

    const started = await call('/rest-api/push/startup', {
      streamName: 'deploy',
      rtmpUrl: `${rtmp.url()}/${STREAM_KEY}`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(started.status, 200, JSON.stringify(started.body));
    await waitFor(
      'video at nginx-rtmp',
      async () => (await rtmp.streams()).some((s) => s.name === STREAM_KEY && s.width > 0),
      20_000,
    );
    t.equal(
      (await call('/rest-api/push/mute', { mediaSessionId: started.body.mediaSessionId })).status,
      200,
      'muted through the balancer',
    );
    t.equal(
      (await call('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId })).status,
      200,
      'terminated through the balancer',
    );
    const ended = await fetch(lb.url + location!, { method: 'DELETE' });
    t.equal(ended.status, 200, 'the WHIP session ended through the balancer');
    await waitFor(
      'the stream gone',
      async () => !(await call('/rest-api/stream/find_all')).body?.some?.((s: { name: string }) => s.name === 'deploy'),
      10_000,
    );
  },
);

t.test("the SDK's WebSocket is upgraded through the balancer; its stream pushed by the backend", async (t) => {
  // With only the backend's key set (no publish keys), a browser may publish but not choose where to.
  const refused = await SyntheticPublisher.publish(testFixture(), lb.url, 'deploy-sdk', {
    sdk: { rtmpUrl: rtmp.url() },
  }).catch((e: Error) => e);
  t.match(
    refused instanceof Error ? refused.message : 'published',
    /forbidden: rtmpUrl: anonymous publishers may not choose a destination/,
  );
  const publisher = await SyntheticPublisher.publish(testFixture(), lb.url, 'deploy-sdk', { sdk: {} });
  publishers.push(publisher);
  const started = await call('/rest-api/push/startup', {
    streamName: 'deploy-sdk',
    rtmpUrl: `${rtmp.url()}/sdk-${STREAM_KEY}`,
    rtmpTransponderFullUrl: true,
  });
  t.equal(started.status, 200, JSON.stringify(started.body));
  await waitFor(
    'video at nginx-rtmp',
    async () => (await rtmp.streams()).some((s) => s.name === `sdk-${STREAM_KEY}` && s.width > 0),
    20_000,
  );
  await publisher.stop();
  await waitFor(
    'the push ended with its publisher',
    async () => !(await rtmp.streams()).some((s) => s.name === `sdk-${STREAM_KEY}`),
    10_000,
  );
});

t.test(
  'a node killed: the balancer sends every request to the others, and a publish placed at the dead node is placed again',
  async (t) => {
    // Two streams at two nodes: the third, idle, is where the next publish would be placed.
    for (const name of ['busy-1', 'busy-2'])
      publishers.push(await SyntheticPublisher.publish(testFixture(), lb.url, name));
    // The loads the nodes place by, as their heartbeats tell them.
    const loads = await waitFor(
      'both streams counted',
      async () => {
        const listed: { id: string; publishers: number }[] =
          (await call('/rest-api/cluster/nodes', null)).body?.nodes ?? [];
        return listed.reduce((sum, n) => sum + n.publishers, 0) === 2 ? listed : undefined;
      },
      10_000,
    );
    const idle = loads.find((n) => n.publishers === 0)?.id;
    t.ok(idle, `publishers per node: ${loads.map((n) => `${n.id} ${n.publishers}`).join(', ')}`);
    await nodes.get(idle!)!.signal('SIGKILL');
    // Until its registration times out, the other nodes still list the killed node, as the least loaded.
    const publisher = await SyntheticPublisher.publish(testFixture(), lb.url, 'after-kill');
    publishers.push(publisher);
    t.pass('a WHIP publish right after the kill answered');
    const logs = await Promise.all(
      ids.filter((id) => id !== idle).map((id) => readFile(join(runDir, `${id}.log`), 'utf8')),
    );
    t.comment(
      logs.some((log) => log.includes('the node a publish was placed at is gone'))
        ? 'it was placed at the killed node first, then again'
        : 'the killed node had left the list already',
    );
    for (let i = 0; i < 6; i++) t.equal((await fetch(`${lb.url}/health`)).status, 200, `health check ${i + 1}`);
  },
);
