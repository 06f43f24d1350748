import t from 'tap';
import { trackedSizes, trackSize } from '../../src/core/tracked.js';

t.test("tracked maps: each name's entries summed over its owners, read when asked", async (t) => {
  const a = { entries: new Map<string, number>() };
  const b = { entries: new Map<string, number>() };
  trackSize('test_map', a, (owner) => owner.entries.size);
  trackSize('test_map', b, (owner) => owner.entries.size);
  t.equal(trackedSizes().test_map, 0);
  a.entries.set('x', 1);
  b.entries.set('y', 1).set('z', 2);
  t.equal(trackedSizes().test_map, 3, 'both owners counted');
  a.entries.clear();
  b.entries.clear();
  t.equal(trackedSizes().test_map, 0, 'back to nothing');
});
