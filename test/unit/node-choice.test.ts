import t from 'tap';
import { KnownNode } from '../../src/cluster/known-node.js';
import { leastLoaded } from '../../src/cluster/node-choice.js';
import type { ListedNode } from '../../src/cluster/nodes.js';

// Which node a publish goes to: the least-loaded node, counting the publishes sent there that the
// nodes' heartbeats cannot have counted yet.

const listed = (id: string, publishers: number): ListedNode => ({
  id,
  url: `http://${id}`,
  startedAt: '',
  draining: false,
  publishers,
  transponders: 0,
  heardAgoMs: 0,
});

/** Nodes `ids`, as this node knows them. */
const known = (...ids: string[]): KnownNode[] => ids.map((id) => new KnownNode(listed(id, 0), () => {}, 0));

/** Heartbeats written at `at`, each telling its node's `publishers`; then the choice among the nodes, sent there. */
function choose(nodes: KnownNode[], self: string, publishers: number[], at: number): string {
  nodes.forEach((node, i) => node.heard(listed(node.id, publishers[i]!), at));
  const chosen = leastLoaded(nodes, self);
  chosen.sent();
  return chosen.id;
}

t.test('a burst is spread: a publish on its way counts, even past a heartbeat written meanwhile', async (t) => {
  const nodes = known('n1', 'n2', 'n3');
  const [n1, , n3] = nodes;
  t.equal(choose(nodes, 'n2', [0, 1, 0], 100), 'n1', 'the least loaded (n1 before n3 on a tie)');
  // n1 writes a heartbeat while the offer is still on its way: it does not count the publish yet.
  t.equal(choose(nodes, 'n2', [0, 1, 0], 150), 'n3', 'the publish on its way to n1 counts in its load');
  n1!.answered(true, 200);
  n3!.answered(true, 210);
  // Heartbeats written after the answers count them: they are not counted twice.
  t.equal(choose(nodes, 'n2', [1, 1, 1], 300), 'n2', 'all equal: this node first');
});

t.test('a publish answered after a heartbeat counts until a later one; a failed one does not count', async (t) => {
  const nodes = known('n1', 'n2');
  const [n1, n2] = nodes;
  t.equal(choose(nodes, 'n9', [0, 0], 100), 'n1');
  n1!.answered(true, 120);
  t.equal(choose(nodes, 'n9', [0, 0], 110), 'n2', 'heartbeat at 110 is older than the answer at 120');
  n2!.answered(false, 130);
  t.equal(choose(nodes, 'n9', [1, 0], 200), 'n2', 'the failed publish at n2 is not counted');
});
