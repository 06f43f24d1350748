import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startProcess, stopAllProcesses, stopProcess, waitFor } from '../../kit/processes.js';
import { RedisServer } from '../../kit/redis-server.js';
import { freePort, NginxRtmp } from '../../kit/rtmp-server.js';
import { testFixture } from '../helpers/synthetic.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { WhepViewer } from '../../kit/whep-viewer.js';

// Three gateway processes on loopback, one redis-server, one nginx-rtmp: a stream is served by one
// node at a time, the REST pushes of a node killed with SIGKILL start again on the node where the
// stream is published next, and Redis going away (even coming back empty) stops nothing running.

const runDir = await mkdtemp(join(tmpdir(), 'gateway-cluster-'));
// Append-only, as docs/cluster.md asks of a cluster's Redis: restarted, it keeps the kept pushes.
const redis = await RedisServer.start({ persist: true });
const nginx = await NginxRtmp.start();
const HOOK_SECRET = 'cluster-webhook-secret';
const hooks = await WebhookReceiver.start(HOOK_SECRET);
const SECRET = 'cluster-test-secret-0123456789';
const KEY = 'SKEYcluster4406';
const nodes = new Map<string, GatewayProcess>();
const publishers: SyntheticPublisher[] = [];
t.teardown(async () => {
  for (const p of publishers) await p.vanish().catch(() => {});
  for (const node of nodes.values()) await node.stop();
  await stopAllProcesses();
  await nginx.stop();
  await hooks.stop();
  await redis.close();
  await rm(runDir, { recursive: true, force: true });
});

async function startNode(id: string): Promise<GatewayProcess> {
  const port = await freePort();
  const cluster = {
    redis_url: redis.url,
    node_id: id,
    advertise_url: `http://127.0.0.1:${port}`,
    secret: SECRET,
    heartbeat_ms: 200,
    node_timeout_ms: 1000,
    lease_ms: 1000,
    drain_timeout_ms: 3000,
  };
  const node = await GatewayProcess.start(
    join(runDir, `${id}.log`),
    {
      GATEWAY_HTTP_PORT: String(port),
      GATEWAY_CLUSTER: JSON.stringify(cluster),
      GATEWAY_LOG_LEVEL: 'info',
      GATEWAY_RUN_DIR: runDir,
      GATEWAY_WEBHOOKS: JSON.stringify([{ id: 'app', url: hooks.url, secret: HOOK_SECRET }]),
      GATEWAY_MIXER_AUTO_START: 'true',
      GATEWAY_MIXER_IDLE_TIMEOUT_MS: '1000',
      // One viewer of a stream per client address, counted at the stream's node.
      GATEWAY_LIMIT_VIEWERS_PER_CLIENT: '1',
    },
    ['--import', 'tsx'],
    'kit/server-from-source.ts',
  );
  nodes.set(id, node);
  return node;
}
const node = (id: string): GatewayProcess => nodes.get(id)!;
const publish = async (at: string, name: string): Promise<SyntheticPublisher> => {
  const p = await SyntheticPublisher.publish(testFixture(), node(at).baseUrl, name);
  publishers.push(p);
  return p;
};
const servingNode = (stream: string): Promise<string | undefined> => GatewayProcess.serving(nodes, stream);
const nodeIds = async (at: string): Promise<string[]> =>
  ((await node(at).request('GET', '/rest-api/cluster/nodes')).body?.nodes ?? []).map((n: { id: string }) => n.id);
const publishing = async (name: string): Promise<number> =>
  (await nginx.streams()).filter((s) => s.name === name && s.width > 0).length;

await Promise.all(['n1', 'n2', 'n3'].map(startNode));
// Every command Redis is sent, publish/subscribe messages included, until the forwarding tests are done.
const monitor = startProcess('redis-cli', ['-p', String(redis.port), 'monitor']);
let monitored = '';
monitor.stdout!.on('data', (d: Buffer) => (monitored += d.toString()));
const spellings = (secret: string): string[] => [
  secret,
  encodeURIComponent(secret),
  Buffer.from(secret).toString('base64').slice(2, -2),
  Buffer.from(secret).toString('hex'),
];

t.test('the nodes see each other, with their load', async (t) => {
  await waitFor('three nodes', async () => (await nodeIds('n1')).length === 3, 5000);
  t.same(await nodeIds('n3'), ['n1', 'n2', 'n3']);
  const { body } = await node('n2').request('GET', '/rest-api/cluster/nodes');
  t.equal(body.node, 'n2', 'each tells which it is');
  t.match(body.nodes[0], {
    id: 'n1',
    url: /^http:\/\/127\.0\.0\.1:\d+$/,
    draining: false,
    publishers: 0,
    transponders: 0,
    heardAgoMs: Number,
  });
});

let pushId = '';
t.test('a stream is served by one node: published again at another, it is refused, naming the node', async (t) => {
  // The console at n3 shows every node's events, each with its node.
  const consoleEvents = await fetch(`${node('n3').baseUrl}/rest-api/console/events`);
  const reader = consoleEvents.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = '';
  void (async () => {
    for (let read = await reader.read(); !read.done; read = await reader.read()) seen += read.value;
  })().catch(() => {});
  t.teardown(() => reader.cancel().catch(() => {}));
  await publish('n2', 'c1');
  await waitFor(
    "n2's event in n3's console",
    () => /event: event\ndata: \{"type":"publisher.published","stream":"c1"[^\n]*"node":"n2"\}/.test(seen),
    5000,
  );
  // Published again through n3: placed at n2, which holds the stream, and refused there.
  await t.rejects(
    SyntheticPublisher.publish(testFixture(), node('n3').baseUrl, 'c1'),
    /answered 409: .*stream c1 is already publishing/,
  );
  const res = await node('n2').request('POST', '/rest-api/push/startup', {
    streamName: 'c1',
    rtmpUrl: `${nginx.url()}/c1-${KEY}`,
    rtmpTransponderFullUrl: true,
  });
  t.equal(res.status, 200, JSON.stringify(res.body));
  pushId = res.body.mediaSessionId;
  await waitFor('the push at nginx', async () => (await publishing(`c1-${KEY}`)) === 1, 10_000);
  await waitFor(
    'n2 tells its load',
    async () =>
      (
        (await node('n1').request('GET', '/rest-api/cluster/nodes')).body.nodes as {
          id: string;
          publishers: number;
          transponders: number;
        }[]
      ).some((n) => n.id === 'n2' && n.publishers === 1 && n.transponders === 1),
    5000,
  );
  // Each event is told once, by the node that serves the stream, naming it.
  const started = await waitFor(
    "the push's started event",
    () =>
      hooks.delivered.filter((h) => h.type === 'transponder.started' && h.body.data.mediaSessionId === pushId).length >
        0 && hooks.delivered,
    5000,
  );
  t.same(
    started
      .filter((h) => h.type === 'transponder.started' && h.body.data.mediaSessionId === pushId)
      .map((h) => h.body.node),
    ['n2'],
    'transponder.started once, from n2',
  );
  t.same(
    started.filter((h) => h.type === 'publisher.published' && h.body.data.stream === 'c1').map((h) => h.body.node),
    ['n2'],
    'publisher.published once, from n2',
  );
  const dump = await redis.dump();
  t.match(dump, new RegExp(`push:${pushId}`), 'the push is kept in Redis');
  for (const spelling of [KEY, Buffer.from(KEY).toString('base64').slice(2, -2), Buffer.from(KEY).toString('hex')])
    t.notOk(dump.includes(spelling), `no ${spelling} in Redis`);
});

t.test(
  'every REST call works on every node: lists gather the cluster, calls reach the node that holds the stream or the push',
  async (t) => {
    const all = await node('n1').request('POST', '/rest-api/push/find_all');
    t.match(
      all,
      { status: 200, body: [{ mediaSessionId: pushId, sourceStreamName: 'c1', state: 'running' }] },
      "find_all at n1 lists n2's push",
    );
    t.match(
      await node('n3').request('POST', '/rest-api/stream/find_all'),
      { status: 200, body: [{ name: 'c1' }] },
      "stream/find_all at n3 lists n2's stream",
    );
    t.match(
      await node('n3').request('POST', '/rest-api/stream/find', { name: 'c1' }),
      { status: 200 },
      'stream/find by name reaches its node',
    );

    // A startup through n1 runs where the stream is (n2); it is controlled through n3 and listed at n1.
    const second = await node('n1').request('POST', '/rest-api/push/startup', {
      streamName: 'c1',
      rtmpUrl: `${nginx.url()}/c1-second-${KEY}`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(second.status, 200, JSON.stringify(second.body));
    const id = second.body.mediaSessionId;
    await waitFor('the second push at nginx', async () => (await publishing(`c1-second-${KEY}`)) === 1, 10_000);
    t.equal(
      (await node('n3').request('POST', '/rest-api/push/mute', { mediaSessionId: id })).status,
      200,
      'muted through n3',
    );
    t.match(await node('n1').request('POST', '/rest-api/push/find', { streamName: 'c1' }), {
      body: [
        { mediaSessionId: pushId, muted: false },
        { mediaSessionId: id, muted: true },
      ],
    });
    t.equal(
      (await node('n3').request('POST', '/rest-api/push/mute', { mediaSessionId: 'no-such-push' })).status,
      404,
      'a push no node has is 404',
    );
    t.equal(
      (await node('n3').request('POST', '/rest-api/push/terminate', { mediaSessionId: id })).status,
      200,
      'terminated through n3',
    );
    await waitFor('the second push gone from nginx', async () => (await publishing(`c1-second-${KEY}`)) === 0, 10_000);
    t.same(
      (await node('n2').request('POST', '/rest-api/push/find', { streamName: 'c1' })).body.map(
        (p: { mediaSessionId: string }) => p.mediaSessionId,
      ),
      [pushId],
    );
    t.notOk((await redis.dump()).includes(`push:${id}`), 'and forgotten in Redis');
  },
);

t.test(
  'a WHEP viewer through a node that does not serve the stream is answered by the one that does, ' +
    "which counts a client's viewers whichever node they come through",
  { skip: process.env.GATEWAY_WEBRTC_ENGINE === 'werift' ? 'WHEP needs webrtc_engine: mediasoup' : false },
  async (t) => {
    const serving = (await servingNode('c1'))!;
    const other = [...nodes.keys()].find((id) => id !== serving)!;
    const viewer = await WhepViewer.watch(node(other).baseUrl, 'c1');
    t.teardown(() => viewer.close());
    await waitFor('video at the viewer', () => viewer.received.video > 50 && viewer.received.keyframes > 0, 15_000);
    t.pass(`viewing through ${other}, media from ${serving}: ${viewer.received.video} video packets`);
    // limit_viewers_per_client is 1: the same address through the serving node is past it.
    const second = await WhepViewer.watch(node(serving).baseUrl, 'c1').then(
      (v) => (void v.close(), 'accepted'),
      (error: Error) => error.message,
    );
    t.match(second, /429[\s\S]*limit_viewers_per_client/, `a second viewer through ${serving}: ${second}`);
    const third = [...nodes.keys()].find((id) => id !== serving && id !== other)!;
    const deleted = await fetch(node(third).baseUrl + viewer.location, { method: 'DELETE' });
    t.equal(deleted.status, 200, `ended through ${third}`);
    const again = await WhepViewer.watch(node(third).baseUrl, 'c1');
    t.teardown(() => again.close());
    t.pass(`the ended viewer's place is free: a viewer through ${third} is answered`);
  },
);

t.test(
  'a publish through a loaded node is placed at the least-loaded one: media goes there, and every call follows it',
  async (t) => {
    // n2 serves c1; n1 and n3 serve nothing: a publish through n2 goes to n1 (the first of the least loaded).
    const placed = await publish('n2', 'c3');
    await waitFor(
      'c3 at n1',
      async () =>
        ((await node('n1').request('POST', '/rest-api/stream/find_all')).body ?? []).some(
          (s: { name: string }) => s.name === 'c3',
        ),
      5000,
    );
    t.match(await redis.command('GET', 'gw:stream:c3'), /^\$\d+$/, 'claimed');
    const holder = await waitFor(
      'n1 tells its load',
      async () =>
        (
          (await node('n3').request('GET', '/rest-api/cluster/nodes')).body.nodes as {
            id: string;
            publishers: number;
          }[]
        ).find((n) => n.id === 'n1' && n.publishers === 1),
      5000,
    );
    t.ok(holder, 'n1 publishes it');
    const res = await node('n3').request('POST', '/rest-api/push/startup', {
      streamName: 'c3',
      rtmpUrl: `${nginx.url()}/c3`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(res.status, 200, 'a push of it started through n3');
    await waitFor('c3 at nginx', async () => (await publishing('c3')) === 1, 10_000);
    // Ended through the node it was published through (WHIP DELETE at n2): it ends at n1.
    await placed.stop();
    publishers.splice(publishers.indexOf(placed), 1);
    await waitFor(
      'c3 ended at n1',
      async () =>
        !((await node('n1').request('POST', '/rest-api/stream/find_all')).body ?? []).some(
          (s: { name: string }) => s.name === 'c3',
        ),
      5000,
    );
    await waitFor('its push ended', async () => (await publishing('c3')) === 0, 10_000);
    await waitFor('c3 given up', async () => (await redis.command('GET', 'gw:stream:c3')) === '$-1', 5000);
    t.notOk(
      (await redis.dump()).includes(res.body.mediaSessionId),
      'its kept push forgotten: the stream ended on purpose',
    );
  },
);

t.test(
  "publishes arriving together are spread: each placed one counts in its node's load before that node tells it",
  async (t) => {
    // n2 serves c1; n1 and n3 serve nothing, once their heartbeats say so (n1 served c3 until just now).
    const idle = async (): Promise<boolean> =>
      (
        (await node('n2').request('GET', '/rest-api/cluster/nodes')).body.nodes as { id: string; publishers: number }[]
      ).every((n) => n.publishers === (n.id === 'n2' ? 1 : 0));
    await waitFor('n1 and n3 tell they serve nothing', idle, 5000);
    const [a, b] = await Promise.all([publish('n2', 'c4'), publish('n2', 'c5')]);
    const served = [
      await waitFor('c4 served', () => servingNode('c4'), 5000),
      await waitFor('c5 served', () => servingNode('c5'), 5000),
    ];
    t.same(served.sort(), ['n1', 'n3'], 'one at each of the two least-loaded nodes');
    for (const p of [a, b]) {
      await p.stop();
      publishers.splice(publishers.indexOf(p), 1);
    }
    await waitFor('n1 and n3 tell they serve nothing again', idle, 5000);
  },
);

t.test(
  "a mixer is placed like a publish, at a least-loaded node, its stream claimed; every node's calls reach it",
  async (t) => {
    // n2 serves c1; n1 and n3 serve nothing.
    const started = await node('n2').request('POST', '/rest-api/mixer/startup', {
      uri: 'mixer://cm',
      width: 320,
      height: 180,
      fps: 10,
    });
    t.equal(started.status, 200, JSON.stringify(started.body));
    t.match(await redis.command('GET', 'gw:stream:cm'), /^\$\d+$/, 'its stream claimed');
    // Its stream counts among the publishers of its node.
    const at = await waitFor(
      'its node tells it',
      async () =>
        (
          (await node('n2').request('GET', '/rest-api/cluster/nodes')).body.nodes as {
            id: string;
            publishers: number;
          }[]
        ).find((n) => n.id !== 'n2' && n.publishers === 1)?.id,
      5000,
    );
    t.ok(at === 'n1' || at === 'n3', `it runs at a node that served nothing (${at})`);
    await t.rejects(
      SyntheticPublisher.publish(testFixture(), node('n2').baseUrl, 'cm'),
      /answered 409: .*stream cm is already publishing/,
      'a publish of its stream is refused',
    );
    const other = at === 'n1' ? 'n3' : 'n1';
    const add = await node(other).request('POST', '/rest-api/mixer/add', {
      uri: 'mixer://cm',
      remoteStreamName: 'later',
      waitForStream: true,
    });
    t.equal(add.status, 200, `an input added through ${other}`);
    const ghost = await node('n2').request('POST', '/rest-api/mixer/remove', {
      uri: 'mixer://cm',
      remoteStreamName: 'ghost',
    });
    t.match(
      ghost,
      { status: 404, body: { field: 'remoteStreamName' } },
      "its node's own refusal is the answer, not another node's 'no mixer'",
    );
    t.match(await node('n2').request('POST', '/rest-api/mixer/find_all'), {
      status: 200,
      body: [{ uri: 'mixer://cm', inputs: [{ streamName: 'later' }] }],
    });
    t.equal(
      (await node('n2').request('POST', '/rest-api/mixer/terminate', { uri: 'mixer://cm' })).status,
      200,
      'terminated through n2',
    );
    await waitFor('its stream given up', async () => (await redis.command('GET', 'gw:stream:cm')) === '$-1', 5000);
    t.match(
      await node(other).request('POST', '/rest-api/mixer/terminate', { uri: 'mixer://cm' }),
      { status: 404, body: { field: 'uri' } },
      'then no node has it',
    );
  },
);

t.test("a room's callers publishing through different nodes meet at the node of its mixer", async (t) => {
  const room = async (): Promise<{ inputs: { streamName: string; publishing: boolean }[] } | undefined> =>
    ((await node('n2').request('POST', '/rest-api/mixer/find_all')).body ?? []).find?.(
      (m: { uri: string }) => m.uri === 'mixer://r1',
    );
  const ann = await publish('n1', 'ann#r1');
  await waitFor('the room formed', async () => (await room())?.inputs.length === 1, 10_000);
  const ben = await publish('n3', 'ben#r1');
  await waitFor(
    'both callers in it, publishing',
    async () => (await room())?.inputs.filter((i) => i.publishing).length === 2,
    10_000,
  );
  t.same(
    (await room())!.inputs.map((i) => i.streamName),
    ['ann#r1', 'ben#r1'],
    'ben, through n3, was placed at the node of the room',
  );
  for (const p of [ann, ben]) {
    await p.stop();
    publishers.splice(publishers.indexOf(p), 1);
  }
  await waitFor('the empty room ended', async () => (await room()) === undefined, 10_000);
  t.pass('the empty room ended');
});

t.test("no stream key in any command or message Redis was sent, nor in any node's log", async (t) => {
  await stopProcess(monitor);
  t.match(monitored, /"publish" "gw:relay:all"/i, `the monitor saw the cluster's messages (${monitored.length} bytes)`);
  t.match(monitored, /"eval"/i, 'and its scripts');
  t.match(monitored, /"set" "gw:push:/i, 'and the kept pushes');
  for (const spelling of spellings(KEY)) t.notOk(monitored.includes(spelling), `no ${spelling} sent to Redis`);
  const { readFile } = await import('node:fs/promises');
  for (const id of nodes.keys()) {
    const log = await readFile(join(runDir, `${id}.log`), 'utf8');
    for (const spelling of spellings(KEY)) t.notOk(log.includes(spelling), `no ${spelling} in ${id}'s log`);
  }
});

t.test("calls between nodes need the cluster's secret", async (t) => {
  const forged = await fetch(`${node('n1').baseUrl}/internal/plane`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sealed: 'v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
  });
  t.equal(forged.status, 401);
  const bad = await fetch(`${node('n1').baseUrl}/internal/plane`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'terminate' }),
  });
  t.equal(bad.status, 400);
});

t.test(
  'a node killed with SIGKILL: gone from the list; the stream, published again through n1, is placed at the least-loaded node with its REST push and its SDK push',
  async (t) => {
    // Another stream, placed at n1 or n3: the least loaded node left will be the other one.
    await publish('n1', 'load1');
    const loaded = await waitFor('the node serving load1', () => servingNode('load1'), 5000);
    const least = loaded === 'n1' ? 'n3' : 'n1';
    await waitFor(
      `${loaded} tells its load`,
      async () =>
        (
          (await node(least).request('GET', '/rest-api/cluster/nodes')).body.nodes as {
            id: string;
            publishers: number;
          }[]
        ).some((n) => n.id === loaded && n.publishers === 1),
      5000,
    );
    const killedAt = Date.now();
    await node('n2').signal('SIGKILL');
    nodes.delete('n2');
    for (const p of publishers.filter((p) => p.name === 'c1')) await p.vanish();
    await waitFor('n2 gone', async () => !(await nodeIds('n1')).includes('n2'), 5000);
    t.pass(`n2 gone from the list ${Date.now() - killedAt} ms after the kill (node_timeout_ms 1000)`);
    // The SDK publishes again through n1 (with its rtmpUrl) once the stream's lease has ended.
    const sdk = await waitFor(
      'c1 published again through n1',
      async () => {
        try {
          const p = await SyntheticPublisher.publish(testFixture(), node('n1').baseUrl, 'c1', {
            sdk: { rtmpUrl: nginx.url() },
          });
          publishers.push(p);
          return p;
        } catch {
          return undefined;
        }
      },
      10_000,
      200,
    );
    t.ok(sdk, 'published');
    t.equal(
      await waitFor('the node serving c1', () => servingNode('c1'), 5000),
      least,
      `placed at ${least}, the least loaded`,
    );
    const back = await waitFor(
      'the REST push running again',
      async () => {
        const res = await node('n1').request('POST', '/rest-api/push/find', { streamName: 'c1' });
        return (
          res.status === 200 &&
          res.body.find(
            (p: { mediaSessionId: string; state: string }) => p.mediaSessionId === pushId && p.state === 'running',
          )
        );
      },
      15_000,
    );
    t.ok(back, 'the same push, by its id');
    await waitFor('media at nginx again', async () => (await publishing(`c1-${KEY}`)) === 1, 10_000);
    t.pass(`the REST push's media at the destination again ${Date.now() - killedAt} ms after the kill`);
    await waitFor('the SDK push at nginx', async () => (await publishing('rtmp_c1')) === 1, 10_000);
    t.pass('the SDK push at the destination too');
  },
);

t.test(
  'Redis away for 10 s: what runs goes on, new publishes are refused; Redis back, then back empty: claims and nodes come back, nothing pushed twice',
  async (t) => {
    const flowing = async (): Promise<number> =>
      (await nginx.streams()).find((s) => s.name === `c1-${KEY}`)?.bytesIn ?? 0;
    const clientId = (await nginx.streams()).find((s) => s.name === `c1-${KEY}`)!.clientId;
    const stoppedAt = Date.now();
    await redis.stop();
    await t.rejects(
      SyntheticPublisher.publish(testFixture(), node('n1').baseUrl, 'c2'),
      /answered 503: .*Redis cannot be reached/,
    );
    // The outage itself lasts 10 s (the scenario, not a wait for something): media is checked all along.
    while (Date.now() - stoppedAt < 10_000) {
      const before = await flowing();
      await waitFor('media still flowing', async () => (await flowing()) > before + 50_000, 10_000);
    }
    const res = await node('n1').request('POST', '/rest-api/push/find', { streamName: 'c1' });
    t.ok(
      res.status === 200 &&
        res.body.some(
          (p: { mediaSessionId: string; state: string }) => p.mediaSessionId === pushId && p.state === 'running',
        ),
      'the push runs on, untouched, after 10 s without Redis',
    );
    t.equal(
      (await nginx.streams()).find((s) => s.name === `c1-${KEY}`)?.clientId,
      clientId,
      'in the same RTMP session',
    );

    await redis.restart();
    await waitFor('the nodes registered again', async () => (await nodeIds('n1').catch(() => [])).length === 2, 10_000);
    await waitFor(
      'c1 held again',
      async () => ((await redis.command('GET', 'gw:stream:c1')) ?? '$-1') !== '$-1',
      10_000,
    );
    t.match(await redis.dump(), new RegExp(`push:${pushId}`), 'the kept push is still in Redis');
    t.equal(await publishing(`c1-${KEY}`), 1, 'pushed once');

    // A push started through the node that does not serve c1: only that node knows its definition.
    const serving = (await servingNode('c1'))!;
    const other = [...nodes.keys()].find((id) => id !== serving)!;
    const through = await node(other).request('POST', '/rest-api/push/startup', {
      streamName: 'c1',
      rtmpUrl: `${nginx.url()}/c1-through-${KEY}`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(through.status, 200, JSON.stringify(through.body));
    await redis.restart({ empty: true });
    await waitFor('the nodes registered again', async () => (await nodeIds('n1').catch(() => [])).length === 2, 10_000);
    await waitFor(
      'c1 held again',
      async () => ((await redis.command('GET', 'gw:stream:c1')) ?? '$-1') !== '$-1',
      10_000,
    );
    await waitFor('the kept push written again', async () => (await redis.dump()).includes(`push:${pushId}`), 10_000);
    t.pass('the kept push, lost with the data, is written again by the node that runs it');
    await waitFor(
      'the push started through the other node written again',
      async () => (await redis.dump()).includes(`push:${through.body.mediaSessionId}`),
      10_000,
    );
    t.pass(`the push started through ${other} and running at ${serving} is written again too`);
    t.equal(
      (await node(other).request('POST', '/rest-api/push/terminate', { mediaSessionId: through.body.mediaSessionId }))
        .status,
      200,
    );
    await t.rejects(
      SyntheticPublisher.publish(testFixture(), node('n1').baseUrl, 'c1'),
      /answered 409: .*stream c1 is (already publishing|published at node n[13])/,
      'placed at the node serving it (or refused by its claim): not published twice',
    );
    t.equal(await publishing(`c1-${KEY}`), 1, 'pushed once');
  },
);
