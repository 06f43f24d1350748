import t from 'tap';
import { Placement } from '../../src/cluster/placement.js';

// Where a node places a publish: the least-loaded node, counting the publishes it placed that the
// nodes' heartbeats cannot have counted yet.

/** Chooses among `nodes`, every one of them listed. */
const among = (placement: Placement, nodes: ReturnType<typeof node>[]): string => placement.choose(nodes, nodes).id;
const node = (
  id: string,
  publishers: number,
  heardAt: number,
): { id: string; publishers: number; transponders: number; heardAt: number } => ({
  id,
  publishers,
  transponders: 0,
  heardAt,
});

t.test('a burst is spread: a publish on its way counts, even past a heartbeat written meanwhile', async (t) => {
  const placement = new Placement('n2');
  const first = among(placement, [node('n1', 0, 100), node('n2', 1, 100), node('n3', 0, 100)]);
  t.equal(first, 'n1', 'the least loaded (n1 before n3 on a tie)');
  // n1 writes a heartbeat while the offer is still on its way: it does not count the publish yet.
  const second = among(placement, [node('n1', 0, 150), node('n2', 1, 150), node('n3', 0, 150)]);
  t.equal(second, 'n3', 'the publish on its way to n1 counts in its load');
  placement.answered('n1', true, 200);
  placement.answered('n3', true, 210);
  // Heartbeats written after the answers count them: they are not counted twice.
  t.equal(
    among(placement, [node('n1', 1, 300), node('n2', 1, 300), node('n3', 1, 300)]),
    'n2',
    'all equal: this node first',
  );
});

t.test('a publish answered after a heartbeat counts until a later one; a failed one does not count', async (t) => {
  const placement = new Placement('n9');
  t.equal(among(placement, [node('n1', 0, 100), node('n2', 0, 100)]), 'n1');
  placement.answered('n1', true, 120);
  t.equal(
    among(placement, [node('n1', 0, 110), node('n2', 0, 110)]),
    'n2',
    'heartbeat at 110 is older than the answer at 120',
  );
  placement.answered('n2', false, 130);
  t.equal(
    among(placement, [node('n1', 1, 200), node('n2', 0, 200)]),
    'n2',
    'the failed placement at n2 is not counted',
  );
});
