import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestBrowser } from '../../kit/browser.js';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { RedisServer } from '../../kit/redis-server.js';
import { freePort, NginxRtmp } from '../../kit/rtmp-server.js';
import { TcpBalancer } from '../../kit/tcp-balancer.js';

// The publish page in Chromium, through a load balancer before three nodes: its node is killed
// with SIGKILL, and the page comes back live by itself through another node, its push with it;
// then the node serving it is drained (a rolling deploy), and the stream moves with a short gap.

const runDir = await mkdtemp(join(tmpdir(), 'gateway-cluster-sdk-'));
const redis = await RedisServer.start();
const nginx = await NginxRtmp.start();
const nodes = new Map<string, GatewayProcess>();
const ports = new Map<string, number>();
for (const id of ['n1', 'n2', 'n3']) {
  const port = await freePort();
  ports.set(id, port);
  const cluster = {
    redis_url: redis.url,
    node_id: id,
    advertise_url: `http://127.0.0.1:${port}`,
    secret: 'cluster-sdk-secret-0123456789',
    heartbeat_ms: 200,
    node_timeout_ms: 1000,
    lease_ms: 1000,
    drain_timeout_ms: 3000,
  };
  nodes.set(
    id,
    await GatewayProcess.start(
      join(runDir, `${id}.log`),
      {
        GATEWAY_HTTP_PORT: String(port),
        GATEWAY_CLUSTER: JSON.stringify(cluster),
        GATEWAY_LOG_LEVEL: 'info',
        GATEWAY_RUN_DIR: runDir,
      },
      ['--import', 'tsx'],
      'kit/server-from-source.ts',
    ),
  );
}
const balancer = await TcpBalancer.start([...ports.values()].map((port) => ({ host: '127.0.0.1', port })));
const browser = await TestBrowser.launch();
t.teardown(async () => {
  await browser.close();
  await balancer.stop();
  for (const node of nodes.values()) await node.stop();
  await stopAllProcesses();
  await nginx.stop();
  await redis.close();
  if (!process.env.KEEP_LOGS) await rm(runDir, { recursive: true, force: true });
});

t.test(
  'the SDK page publishes through the cluster; its node is killed; the page comes back live by itself, its push with it',
  async (t) => {
    const page = browser.page;
    await page.goto(`${balancer.url}/`);
    await page.fill('#name', 'cl1');
    await page.fill('#rtmpUrl', nginx.url());
    await page.uncheck('#fullUrl');
    await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 10_000);
    await page.click('#publish');
    await waitFor('the page to say Live', async () => (await page.textContent('#status')) === 'Live', 15_000);
    const first = await waitFor(
      'video at the RTMP server',
      async () => (await nginx.streams()).find((s) => s.name === 'rtmp_cl1' && s.width > 0),
      15_000,
    );

    const claim = await waitFor('the stream claimed', async () => {
      const reply = await redis.command('GET', 'gw:stream:cl1');
      return reply && reply !== '$-1' && reply;
    });
    const owner = (await (await fetch(`${balancer.url}/rest-api/cluster/nodes`)).json()) as { nodes: { id: string }[] };
    t.equal(owner.nodes.length, 3, 'three nodes');
    const serving = (await GatewayProcess.serving(nodes, 'cl1')) ?? '';
    t.ok(serving, `node ${serving} serves cl1 (${claim})`);

    const killedAt = Date.now();
    await nodes.get(serving)!.signal('SIGKILL');
    nodes.delete(serving);
    await waitFor(
      'the page to say Live again',
      async () => (await page.textContent('#status')) === 'Live' && (await waitBack()),
      30_000,
      100,
    ).catch(async (error) => {
      t.comment(
        `page status: ${await page.textContent('#status')}; destinations: ${await page.textContent('.destination')}`,
      );
      throw error;
    });
    const back = (await nginx.streams()).find((s) => s.name === 'rtmp_cl1' && s.width > 0)!;
    t.not(back.clientId, first.clientId, 'a new RTMP session from the other node');
    t.comment(`media at the destination again ${Date.now() - killedAt} ms after the node was killed`);
    const pushes = await [...nodes.values()][0]!.request('POST', '/rest-api/push/find', { streamName: 'cl1' });
    t.match(
      pushes,
      { status: 200, body: [{ sourceStreamName: 'cl1', state: 'running' }] },
      'its push runs on a node left',
    );

    async function waitBack(): Promise<boolean> {
      return (await nginx.streams()).some((s) => s.name === 'rtmp_cl1' && s.width > 0 && s.clientId !== first.clientId);
    }
  },
);

const servingNode = (stream: string): Promise<string | undefined> => GatewayProcess.serving(nodes, stream);

t.test(
  'draining the node that serves the stream moves it to the other node with a short gap, its pushes with it; the node then exits',
  async (t) => {
    const page = browser.page;
    const serving = await waitFor('the node serving cl1', () => servingNode('cl1'), 10_000);
    const [other] = [...nodes.keys()].filter((id) => id !== serving);
    // A push started over REST as well: kept, it moves with the stream.
    const kept = await nodes.get(other!)!.request('POST', '/rest-api/push/startup', {
      streamName: 'cl1',
      rtmpUrl: `${nginx.url()}/cl1-kept`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(kept.status, 200, JSON.stringify(kept.body));
    await waitFor(
      'the REST push at nginx',
      async () => (await nginx.streams()).some((s) => s.name === 'cl1-kept' && s.width > 0),
      10_000,
    );
    const before = (await nginx.streams()).find((s) => s.name === 'rtmp_cl1')!;

    // Watch the destination: when the old RTMP session was last seen, when the new one first sent video.
    let lastOld = Date.now();
    let firstNew = 0;
    const watch = setInterval(() => {
      void nginx.streams().then((streams) => {
        const s = streams.find((x) => x.name === 'rtmp_cl1');
        if (s?.clientId === before.clientId) lastOld = Date.now();
        else if (s && s.width > 0 && !firstNew) firstNew = Date.now();
      });
    }, 25);
    t.teardown(() => clearInterval(watch));
    const drained = nodes.get(serving)!;
    const res = await drained.request('POST', '/rest-api/cluster/drain');
    t.match(res, { status: 202, body: { node: serving, draining: true } });
    t.equal(await drained.exited(), 0, 'the drained node exits by itself, with status 0');
    nodes.delete(serving);
    await waitFor('the new RTMP session', () => firstNew > 0, 15_000);
    clearInterval(watch);
    const gapMs = firstNew - lastOld;
    // The SDK publishing again at the other node (about 1 s) and the push starting there: 1.4 s
    // alone, 2.2 s in the whole suite under coverage on two cores. A publisher told to move only
    // when the node exits (at its drain deadline, 3 s here) would be well over this.
    t.ok(gapMs < 3000, `gap at the destination ${gapMs} ms (a new RTMP session: the node changed)`);
    t.equal(await servingNode('cl1'), other, 'served by the node left');
    await waitFor('the page to say Live', async () => (await page.textContent('#status')) === 'Live', 10_000);
    // The gap was measured on one push; the other may still be connecting.
    const running = async (): Promise<{ state: string; mediaSessionId: string }[] | false> => {
      const found = await nodes.get(other!)!.request('POST', '/rest-api/push/find', { streamName: 'cl1' });
      return (
        found.status === 200 &&
        found.body.length === 2 &&
        found.body.every((p: { state: string }) => p.state === 'running') &&
        found.body
      );
    };
    const pushes = await waitFor("both pushes running there: the SDK's and the kept one", running, 15_000);
    t.pass("both pushes run there: the SDK's and the kept one");
    t.ok(
      pushes.some((p: { mediaSessionId: string }) => p.mediaSessionId === kept.body.mediaSessionId),
      'the kept push under its id',
    );
  },
);
