import t from 'tap';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { RedisServer } from '../../kit/redis-server.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { Settling, StreamClaims } from '../../src/cluster/claims.js';
import { NodeRegistry, type NodeInfo } from '../../src/cluster/nodes.js';
import { connectRedis, whenReady } from '../../src/cluster/redis.js';
import { RedisPushStore } from '../../src/store/redis-store.js';
import { Sealer } from '../../src/security/seal.js';

// The cluster's registry on a real redis-server: nodes and their heartbeats, stream claims with
// leases and fencing tokens, push definitions; and what each does when Redis goes away, comes
// back, or comes back empty.

const redis = await RedisServer.start();
const log = pino({ level: 'silent' });
const connections: Redis[] = [];
t.teardown(async () => {
  for (const c of connections) c.disconnect();
  await redis.close();
  await stopAllProcesses();
});
const connect = async (name: string): Promise<Redis> => {
  const c = connectRedis(redis.url, name, log);
  connections.push(c);
  if (!(await whenReady(c, 5000))) throw new Error('Redis not reachable');
  return c;
};
const prefix = 'test:';
const info = (id: string, publishers = 0): NodeInfo => ({
  id,
  url: `http://127.0.0.1:1/${id}`,
  startedAt: new Date().toISOString(),
  draining: false,
  publishers,
  transponders: 0,
});

t.test(
  'nodes register with their load; one that stops beating is gone within its timeout; one that leaves is gone at once',
  async (t) => {
    const options = { prefix, heartbeatMs: 100, timeoutMs: 600 };
    let load = 3;
    const a = new NodeRegistry(await connect('a'), () => info('a', load), options, log);
    const b = new NodeRegistry(await connect('b'), () => info('b'), options, log);
    await a.start();
    await b.start();
    t.same(
      (await a.list()).map((n) => [n.id, n.publishers]),
      [
        ['a', 3],
        ['b', 0],
      ],
      'each sees both',
    );
    load = 5;
    await waitFor('a new load told', async () => (await b.list()).find((n) => n.id === 'a')?.publishers === 5, 2000);
    t.ok(
      (await b.list()).every((n) => n.heardAgoMs < 600),
      'heard from within the timeout',
    );

    // b dies: its connection goes without a word, as when its process is killed (its beats fail from now on).
    const killedAt = Date.now();
    connections.find((c) => c.options.connectionName === 'b')!.disconnect();
    await waitFor('b gone from the list', async () => !(await a.list()).some((n) => n.id === 'b'), 3000);
    const goneMs = Date.now() - killedAt;
    t.ok(
      goneMs <= 600 + 1000,
      `gone ${goneMs} ms after its last heartbeat could be sent (timeout 600 ms; a busy machine polls late)`,
    );

    await a.stop();
    const c = new NodeRegistry(await connect('c'), () => info('c'), options, log);
    await c.start();
    t.same(
      (await c.list()).map((n) => n.id),
      ['c'],
      'a left at once',
    );
    await c.stop();
  },
);

t.test(
  'a stream is held by one node: concurrent claims have one winner; a lost lease goes to another with a greater token',
  async (t) => {
    const nodes = await Promise.all(
      ['n1', 'n2', 'n3', 'n4', 'n5'].map(
        async (id) => new StreamClaims(await connect(id), id, { prefix, leaseMs: 300 }),
      ),
    );
    const results = await Promise.all(nodes.map((n) => n.claim('race')));
    const winners = results.filter((r) => r.mine);
    t.equal(winners.length, 1, 'one winner of five');
    t.ok(
      results.every((r) => r.node === winners[0]!.node && r.token === winners[0]!.token),
      'the others are told who holds it',
    );
    const winner = nodes.find((n) => n.node === winners[0]!.node)!;
    const other = nodes.find((n) => n !== winner)!;

    // Renewed, it stays held past its lease.
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      t.same(await winner.renew(), [], 'renewed');
    }
    t.notOk((await other.claim('race')).mine, 'still held');

    // Not renewed (its node gone), the lease ends and another takes it with a greater token.
    const taken = await waitFor(
      'the lease to end',
      async () => {
        const claim = await other.claim('race');
        return claim.mine && claim;
      },
      3000,
    );
    t.ok(taken.token > winners[0]!.token, `a greater token (${winners[0]!.token} -> ${taken.token})`);
    t.same(await winner.renew(), ['race'], 'the old holder learns it lost the stream at its next renewal');
    t.equal(winner.held.size, 0);

    await other.release('race');
    t.equal(await other.holder('race'), undefined, 'released');
    await winner.release('never-held');
  },
);

t.test('push definitions in Redis: put, read, remove; no key in any key or value', async (t) => {
  const store = new RedisPushStore(await connect('store'), prefix);
  const sealer = new Sealer('cluster secret of 16+ chars', 'kept pushes');
  const KEY = 'SKEYredis7310';
  await store.put({
    id: 'p1',
    stream: 'cam',
    startedBy: 'rest',
    createdAt: '2026-01-01T00:00:00.000Z',
    sealed: sealer.seal({ rtmpUrl: `rtmp://a.rtmp.youtube.com/live2/${KEY}` }),
  });
  await store.put({
    id: 'p2',
    stream: 'cam',
    startedBy: 'rest',
    createdAt: '2026-01-01T00:00:00.000Z',
    sealed: sealer.seal({ rtmpUrl: 'rtmp://x/y' }),
  });
  await store.put({
    id: 'p3',
    stream: 'other',
    startedBy: 'rest',
    createdAt: '2026-01-01T00:00:00.000Z',
    sealed: sealer.seal({ rtmpUrl: 'rtmp://x/z' }),
  });
  t.same((await store.ofStream('cam')).map((p) => p.id).sort(), ['p1', 'p2'], 'by stream');
  t.equal((await store.get('p3'))?.stream, 'other', 'by id');
  await store.remove('p2');
  await store.remove('p3');
  t.same(
    (await store.ofStream('cam')).map((p) => p.id),
    ['p1'],
    "a removed push leaves its stream's list",
  );
  t.same(await store.ofStream('other'), []);
  const all = await store.all();
  t.same(
    all.map((p) => p.id),
    ['p1'],
  );
  t.same(sealer.open(all[0]!.sealed), { rtmpUrl: `rtmp://a.rtmp.youtube.com/live2/${KEY}` });
  const dump = await redis.dump();
  t.match(dump, /test:push:p1/, 'the dump reads the store');
  for (const spelling of [
    KEY,
    Buffer.from(KEY).toString('base64').slice(2, -2),
    Buffer.from(KEY).toString('hex'),
    'youtube',
  ])
    t.notOk(dump.includes(spelling), `no ${spelling} in Redis`);
  await store.remove('p1');
});

t.test(
  'Redis away, then back empty: heartbeats and renewals fail while it is away (nothing decided), then the node registers and claims again',
  async (t) => {
    const options = { prefix, heartbeatMs: 100, timeoutMs: 1000 };
    const registry = new NodeRegistry(await connect('r'), () => info('r'), options, log);
    const claims = new StreamClaims(connections.at(-1)!, 'r', { prefix, leaseMs: 1000 });
    await registry.start();
    const first = await claims.claim('kept');
    t.ok(first.mine);

    await redis.stop();
    t.equal(await registry.beat(), false, 'a heartbeat fails at once while Redis is away');
    await t.rejects(claims.renew(), 'a renewal fails: nothing is decided');
    t.equal(claims.held.size, 1, 'and the claim is still held here');

    await redis.restart({ empty: true });
    await waitFor(
      'registered again',
      async () => (await registry.list().catch(() => [])).some((n) => n.id === 'r'),
      5000,
    );
    t.same(await claims.renew(), [], 'the claim, gone with the data, is taken again');
    // Meanwhile another node cannot take a stream nobody holds: its node may not have claimed it again yet.
    const other = new StreamClaims(connections.at(-1)!, 'o', { prefix, leaseMs: 60_000 });
    const refused = await other.claim('fresh').then(
      () => undefined,
      (error: unknown) => error,
    );
    t.ok(refused instanceof Settling, 'a new claim waits a lease after Redis lost its data');
    const again = await claims.holder('kept');
    t.equal(again?.node, 'r');
    t.ok(
      again!.token > first.token,
      `with a greater token than before the restart (${first.token} -> ${again!.token})`,
    );

    // Another node took the stream while the claim was gone: that renewal says it was lost.
    await redis.command('SET', 'test:stream:kept', 'other|999');
    t.same(await claims.renew(), ['kept'], 'lost to the other node');
    await registry.stop();
  },
);
