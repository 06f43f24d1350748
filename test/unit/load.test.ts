import t from 'tap';
import { LoadMonitor, SUSTAINED_WINDOWS, type LoadSample } from '../../src/load.js';

// The overload judgement in fake time: each limit on its own, load that lasts against a moment's,
// the hold after the last overloaded window, and the 503 it makes.

function monitor(limits: Partial<ConstructorParameters<typeof LoadMonitor>[0]>) {
  let now = 0;
  let sample: LoadSample = { eventLoopDelayMs: 5, eventLoopDelayMaxMs: 5, eventLoopUtilization: 0.2, machineCpuPercent: 30 };
  const m = new LoadMonitor({ eventLoopDelayMs: 0, eventLoopUtilization: 0, machineCpuPercent: 0, ...limits }, () => sample, () => now);
  return {
    m,
    set: (next: Partial<LoadSample>) => void (sample = { ...sample, ...next }),
    at: (ms: number) => void (now = ms),
  };
}

t.test('under every limit: admitted', async (t) => {
  const { m } = monitor({ eventLoopDelayMs: 50, eventLoopUtilization: 0.9, machineCpuPercent: 90 });
  m.tick();
  t.equal(m.overload, undefined);
  t.doesNotThrow(() => m.admit('publishing cam'));
  m.close();
});

for (const [limit, sample, words] of [
  [{ eventLoopDelayMs: 50 }, { eventLoopDelayMs: 80 }, /event-loop delay p99 80 ms \(overload_event_loop_delay_ms 50\)/],
  [{ eventLoopUtilization: 0.9 }, { eventLoopUtilization: 0.95 }, /event loop busy 95 % \(overload_event_loop_utilization 0.9\)/],
  [{ machineCpuPercent: 90 }, { machineCpuPercent: 97 }, /machine CPU 97 % \(overload_machine_cpu_percent 90\)/],
] as const) {
  t.test(`past ${Object.keys(limit)[0]} for ${SUSTAINED_WINDOWS} windows: refused with 503 saying why, for 3 s after the last such window`, async (t) => {
    const { m, set, at } = monitor(limit);
    set(sample);
    for (let window = 1; window < SUSTAINED_WINDOWS; window++) {
      m.tick();
      t.equal(m.overload, undefined, `not after ${window} window(s): a moment, not load that lasts`);
    }
    m.tick();
    t.match(m.overload, words);
    t.throws(() => m.admit('publishing cam'), { code: 'unavailable', message: /overloaded .*publishing cam refused/, retryAfterS: 3 });
    set({ eventLoopDelayMs: 5, eventLoopUtilization: 0.2, machineCpuPercent: 30 });
    at(1000);
    m.tick();
    t.ok(m.overload, 'still held a second later');
    at(3001);
    t.equal(m.overload, undefined, 'admitted again once it held for 3 s');
    m.close();
  });
}

t.test('windows past a limit with one under between them are moments, not load that lasts', async (t) => {
  const { m, set } = monitor({ eventLoopDelayMs: 50 });
  for (let i = 0; i < 10; i++) {
    set({ eventLoopDelayMs: i % SUSTAINED_WINDOWS === SUSTAINED_WINDOWS - 1 ? 5 : 400 });
    m.tick();
    t.equal(m.overload, undefined, `window ${i + 1}`);
  }
  m.close();
});

t.test('a limit of 0 is off', async (t) => {
  const { m, set } = monitor({});
  set({ eventLoopDelayMs: 5000, eventLoopUtilization: 1, machineCpuPercent: 100 });
  m.tick();
  t.equal(m.overload, undefined);
  m.close();
});
