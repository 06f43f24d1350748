import t from 'tap';
import { waitFor } from '../../kit/processes.js';
import { onTick } from '../../src/core/tick.js';

// The thread's one timer for periodic work: each job at its own period, in whole ticks; a job
// stopped runs no more, and the others go on.

t.test('jobs run at their own periods on the one tick, and stop when told', async (t) => {
  let fast = 0;
  let slow = 0;
  let witness = 0;
  const stopFast = onTick(() => fast++);
  const stopSlow = onTick(() => slow++, 300);
  const stopWitness = onTick(() => witness++);
  t.teardown(stopWitness);
  await waitFor('the 300 ms job to run twice', () => slow >= 2, 10_000, 10);
  t.ok(fast >= 2 * 3, `the 100 ms job ran at least three times as often (${fast} against ${slow})`);
  stopFast();
  stopSlow();
  stopFast(); // a second stop is harmless
  const [fastAt, slowAt, witnessAt] = [fast, slow, witness];
  await waitFor('four more ticks', () => witness >= witnessAt + 4, 10_000, 10);
  t.same([fast, slow], [fastAt, slowAt], 'the stopped jobs ran no more');
});
