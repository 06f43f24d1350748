import t from 'tap';
import { Worker } from 'node:worker_threads';
import { Slots } from '../../src/core/slots.js';

t.test('slots taken through one view are seen through another of the same memory, up to the limit', async (t) => {
  const buffer = Slots.buffer(2);
  const a = new Slots(buffer, 0);
  const b = new Slots(buffer, 0);
  const other = new Slots(buffer, 1);
  t.ok(a.take(2));
  t.ok(b.take(2));
  t.notOk(a.take(2), 'the limit holds across views');
  t.equal(other.taken, 0, 'each count is its own');
  b.give();
  t.equal(a.taken, 1);
  t.ok(a.take(2), 'a slot given back can be taken again');
});

t.test('three threads taking at once never go past the limit', async (t) => {
  // Cells: 0 the slots, 1 the workers' successes, 2 the start signal.
  const buffer = Slots.buffer(3);
  const cells = new Int32Array(buffer);
  // Each worker takes through its own Slots on the same memory, 10,000 tries, once all are ready.
  const slotsModule = new URL('../../src/core/slots.ts', import.meta.url).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(async (tsx) => {
      tsx.register();
      const { Slots } = await import(${JSON.stringify(slotsModule)});
      const slots = new Slots(workerData, 0);
      const cells = new Int32Array(workerData);
      parentPort.postMessage('ready');
      Atomics.wait(cells, 2, 0);
      for (let i = 0; i < 10000; i++) if (slots.take(1000)) Atomics.add(cells, 1, 1);
    });`;
  const workers = [0, 1].map(() => new Worker(code, { eval: true, workerData: buffer }));
  t.teardown(() => Promise.all(workers.map((w) => w.terminate())));
  await Promise.all(workers.map((w) => new Promise((ready) => w.once('message', ready))));
  const exited = workers.map((w) => new Promise((done) => w.once('exit', done)));
  Atomics.store(cells, 2, 1);
  Atomics.notify(cells, 2);
  const slots = new Slots(buffer, 0);
  let mine = 0;
  for (let i = 0; i < 10000; i++) if (slots.take(1000)) mine++;
  await Promise.all(exited);
  t.equal(slots.taken, 1000, 'exactly the limit was taken');
  t.equal(mine + cells[1]!, 1000, `by all threads together (${mine} here, ${cells[1]} in the workers)`);
});
