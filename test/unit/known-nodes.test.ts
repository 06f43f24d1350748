import t from 'tap';
import { ForwardedPublishes } from '../../src/cluster/forwarded-publishes.js';
import type { HeldStreams } from '../../src/cluster/held-streams.js';
import type { AtNode, KnownNode } from '../../src/cluster/known-node.js';
import { KnownNodes } from '../../src/cluster/known-nodes.js';
import type { ClusterNode } from '../../src/cluster/node.js';
import type { ListedNode } from '../../src/cluster/nodes.js';

// The nodes as one node knows them: each node's record holds the publishes placed there, each
// leaving it as it ends; a node gone from the list, or listed again for another run, loses all of
// them at once and tells the list once. Nothing looks through other records to find what was lost.

const listed = (id: string, boot = 'run1'): ListedNode => ({
  id,
  url: `http://${id}`,
  startedAt: '',
  boot,
  draining: false,
  publishers: 0,
  transponders: 0,
  heardAgoMs: 0,
});

/** The list over a registry answering `answer()`, and the nodes it was told gone, with what was lost. */
function nodesOf(answer: () => ListedNode[]): {
  nodes: KnownNodes;
  gone: { node: string; reason: string; lost: string[] }[];
} {
  const gone: { node: string; reason: string; lost: string[] }[] = [];
  const nodes = new KnownNodes({ list: async () => answer() }, (node, reason, lost) =>
    gone.push({ node: node.id, reason, lost: lost.map((what) => what.id) }),
  );
  return { nodes, gone };
}

/** Something running at a node, and the reasons it was told it is lost. */
const running = (id: string): AtNode & { lostFor: string[] } => {
  const lostFor: string[] = [];
  return { id, lostFor, lost: (reason) => lostFor.push(reason) };
};

const byId = async (nodes: KnownNodes, id: string): Promise<KnownNode> =>
  (await nodes.list(true)).find((node) => node.id === id)!;

t.test('a node gone from the list loses what ran there at once, and tells the list once', async (t) => {
  let list = [listed('n1'), listed('n2'), listed('n3')];
  const { nodes, gone } = nodesOf(() => list);
  const n2 = await byId(nodes, 'n2');
  const [a, b, ended] = [running('a'), running('b'), running('ended')];
  n2.hold(a);
  n2.hold(b);
  n2.hold(ended)();
  (await byId(nodes, 'n3')).hold(running('at-n3'));
  list = [listed('n1'), listed('n3')];
  t.same(
    (await nodes.list(true)).map((n) => n.id),
    ['n1', 'n3'],
  );
  t.same(gone, [{ node: 'n2', reason: 'node n2 is gone', lost: ['a', 'b'] }], 'told once, with what was lost');
  t.same([a.lostFor, b.lostFor, ended.lostFor], [['node n2 is gone'], ['node n2 is gone'], []]);
  const late = running('late');
  n2.hold(late);
  t.same(late.lostFor, ['node n2 is gone'], 'held by a node already gone: lost at once');
  await nodes.list(true);
  t.equal(gone.length, 1, 'a node is gone once');
});

t.test('a node listed again for another run is gone: a new record stands for it', async (t) => {
  let list = [listed('n1'), listed('n2')];
  const { nodes, gone } = nodesOf(() => list);
  const before = await byId(nodes, 'n2');
  const a = running('a');
  before.hold(a);
  list = [listed('n1'), listed('n2', 'run2')];
  const after = await byId(nodes, 'n2');
  t.not(after, before, 'another record');
  t.same(gone, [{ node: 'n2', reason: 'node n2 started again', lost: ['a'] }]);
  t.same(a.lostFor, ['node n2 started again']);
  t.equal(await byId(nodes, 'n2'), after, 'the same run keeps its record');
});

t.test('while the registry cannot be read, the last list stands and no node is gone', async (t) => {
  let down = false;
  const { nodes, gone } = nodesOf(() => {
    if (down) throw new Error('Redis away');
    return [listed('n1'), listed('n2')];
  });
  const first = await nodes.list(true);
  down = true;
  t.equal(await nodes.list(true), first, 'the last list');
  t.same(gone, []);
});

t.test('a placed publish closed at its node leaves its record; the rest are lost with the node', async (t) => {
  let list = [listed('n1'), listed('n2')];
  const { nodes, gone } = nodesOf(() => list);
  let onMessage: (message: unknown) => void = () => {};
  const node = {
    messenger: {
      set onMessage(listener: (message: unknown) => void) {
        onMessage = listener;
      },
    },
    config: { heartbeat_ms: 60_000 },
  } as unknown as ClusterNode;
  const publishes = new ForwardedPublishes(node, nodes, {} as HeldStreams);
  t.teardown(() => publishes.close());
  const n2 = await byId(nodes, 'n2');
  const told: string[] = [];
  const handlers = (id: string) => ({
    publishing: () => told.push(`${id} publishing`),
    closed: (reason: string, lost: boolean) => told.push(`${id} closed: ${reason}${lost ? ', lost' : ''}`),
  });
  // News that comes before the answer is kept for it.
  onMessage({ kind: 'publishing', publisherId: 'p1' });
  publishes.add(n2, 'p1', handlers('p1'));
  publishes.add(n2, 'p2', handlers('p2'));
  onMessage({ kind: 'closed', publisherId: 'p2', reason: 'unpublished', lost: false });
  t.same(told, ['p1 publishing', 'p2 closed: unpublished']);
  list = [listed('n1')];
  await nodes.list(true);
  t.same(told.slice(2), ['p1 closed: node n2 is gone, lost'], 'the one still running is lost, once');
  t.same(gone, [{ node: 'n2', reason: 'node n2 is gone', lost: ['p1'] }]);
});
