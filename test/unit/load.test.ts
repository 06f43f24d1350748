import t from 'tap';
import { spawn } from 'node:child_process';
import { waitFor } from '../../kit/processes.js';
import {
  cgroupQuota,
  cpuTimesReader,
  gatewayCpuSeconds,
  LoadMonitor,
  processCpuSeconds,
  SUSTAINED_WINDOWS,
  type LoadSample,
} from '../../src/core/load.js';

// The overload judgement in fake time: each limit on its own, load that lasts against a moment's,
// the hold after the last overloaded window, and the 503 it makes.

function monitor(limits: Partial<ConstructorParameters<typeof LoadMonitor>[0]>) {
  let now = 0;
  let sample: LoadSample = {
    eventLoopDelayMs: 5,
    eventLoopDelayMaxMs: 5,
    eventLoopUtilization: 0.2,
    machineCpuPercent: 30,
  };
  const m = new LoadMonitor(
    { eventLoopDelayMs: 0, eventLoopUtilization: 0, machineCpuPercent: 0, ...limits },
    { sample: () => sample },
    () => now,
  );
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

t.test('an idle thread stops measuring its event-loop delay, and starts again on what it is given', async (t) => {
  const watched: boolean[] = [];
  let carrying = true;
  let now = 0;
  const m = new LoadMonitor(
    { eventLoopDelayMs: 50, eventLoopUtilization: 0, machineCpuPercent: 0 },
    {
      sample: () => ({ eventLoopDelayMs: 0, eventLoopDelayMaxMs: 0, eventLoopUtilization: 0, machineCpuPercent: 0 }),
      watchDelay: (on) => watched.push(on),
    },
    () => now,
  );
  t.teardown(() => m.close());
  m.watchWhile(() => carrying);
  m.tick();
  t.same(watched, [], 'carrying: measured on');
  carrying = false;
  m.tick();
  m.tick();
  t.same(watched, [false], 'nothing carried: stopped, once');
  m.admit('publishing cam');
  t.same(watched, [false, true], 'a publish admitted: measured again at once, before its set-up');
  now = 4000;
  m.tick();
  t.same(watched, [false, true], 'kept on while the set-up may still be making what it carries');
  now = 5000;
  m.tick();
  t.same(watched, [false, true, false], 'refused or gone: stopped again');
  carrying = true;
  m.tick();
  t.same(watched, [false, true, false, true], 'carrying again, without an admission: from the next window');
});

for (const [limit, sample, words] of [
  [
    { eventLoopDelayMs: 50 },
    { eventLoopDelayMs: 80 },
    /event-loop delay p99 80 ms \(overload_event_loop_delay_ms 50\)/,
  ],
  [
    { eventLoopUtilization: 0.9 },
    { eventLoopUtilization: 0.95 },
    /event loop busy 95 % \(overload_event_loop_utilization 0.9\)/,
  ],
  [{ machineCpuPercent: 90 }, { machineCpuPercent: 97 }, /machine CPU 97 % \(overload_machine_cpu_percent 90\)/],
] as const) {
  t.test(
    `past ${Object.keys(limit)[0]} for ${SUSTAINED_WINDOWS} windows: refused with 503 saying why, for 3 s after the last such window`,
    async (t) => {
      const { m, set, at } = monitor(limit);
      set(sample);
      for (let window = 1; window < SUSTAINED_WINDOWS; window++) {
        m.tick();
        t.equal(m.overload, undefined, `not after ${window} window(s): a moment, not load that lasts`);
      }
      m.tick();
      t.match(m.overload, words);
      t.throws(() => m.admit('publishing cam'), {
        code: 'unavailable',
        message: /overloaded .*publishing cam refused/,
        retryAfterS: 3,
      });
      set({ eventLoopDelayMs: 5, eventLoopUtilization: 0.2, machineCpuPercent: 30 });
      at(1000);
      m.tick();
      t.ok(m.overload, 'still held a second later');
      at(3001);
      t.equal(m.overload, undefined, 'admitted again once it held for 3 s');
      m.close();
    },
  );
}

t.test(
  'saturated: the machine 90 % busy, or this thread starved: its window a whole window late, or overdue now',
  async (t) => {
    const { m, set, at } = monitor({});
    t.equal(m.saturated, false, 'CPU to spare, the window on time');
    set({ machineCpuPercent: 95 });
    m.tick();
    t.equal(m.saturated, true, '95 % busy');
    set({ machineCpuPercent: 30 });
    m.tick();
    at(1500);
    t.equal(m.saturated, false, 'half a window overdue: not yet');
    at(2000);
    t.equal(m.saturated, true, 'a window overdue: the thread did not get the CPU to measure');
    m.close();
  },
);

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

// The CPU judged: a container's share of its quota, read from its cgroup (files faked here), or the machine's.
const files =
  (entries: Record<string, string>) =>
  (path: string): string | undefined =>
    entries[path];

t.test('a cgroup v2 quota: its cores, and its usage against them over wall time', async (t) => {
  let usageUs = 4_000_000;
  const read = (path: string): string | undefined =>
    ({
      '/proc/self/cgroup': '0::/gateway.slice\n',
      '/sys/fs/cgroup/gateway.slice/cpu.max': '150000 100000\n',
      '/sys/fs/cgroup/gateway.slice/cpu.stat': `usage_usec ${usageUs}\nuser_usec 3000000\n`,
      '/proc/stat': 'cpu 100 0 100 800 0 0 0 0 0 0\n',
    })[path];
  const quota = cgroupQuota(read);
  t.equal(quota?.cores, 1.5);
  t.equal(quota?.usageUs(), 4_000_000);
  let now = 10_000_000;
  const times = cpuTimesReader(read, () => now);
  const first = times()!;
  now += 1_000_000;
  usageUs += 1_200_000;
  const later = times()!;
  // 1.2 s of CPU in 1 s of a 1.5-core quota: 80 %.
  t.equal(Math.round(((later.busy - first.busy) / (later.total - first.total)) * 100), 80);
});

t.test('a cgroup v2 without a quota, or a namespace of its own: the root is read, then the machine', async (t) => {
  t.equal(
    cgroupQuota(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' })),
    undefined,
    'max: no quota',
  );
  const own = cgroupQuota(
    files({
      '/proc/self/cgroup': '0::/docker/abc\n',
      '/sys/fs/cgroup/cpu.max': '200000 100000',
      '/sys/fs/cgroup/cpu.stat': 'usage_usec 7',
    }),
  );
  t.equal(own?.cores, 2, 'a container whose cgroup namespace shows its own as the root');
  const machine = cpuTimesReader(
    files({ '/proc/self/cgroup': '0::/\n', '/proc/stat': 'cpu 100 0 100 800 0 0 0 0 0 0\n' }),
  )();
  t.same(machine, { busy: 200, total: 1000 }, 'no quota: the whole machine, from /proc/stat');
});

t.test('a cgroup v1 quota: cpu.cfs_quota_us over its period, cpuacct.usage in nanoseconds; -1 is none', async (t) => {
  const cgroup = '12:cpu,cpuacct:/ctr\n3:memory:/ctr\n0::/\n';
  const quota = cgroupQuota(
    files({
      '/proc/self/cgroup': cgroup,
      '/sys/fs/cgroup/cpu/ctr/cpu.cfs_quota_us': '50000\n',
      '/sys/fs/cgroup/cpu/ctr/cpu.cfs_period_us': '100000\n',
      '/sys/fs/cgroup/cpuacct/ctr/cpuacct.usage': '3000000000\n',
    }),
  );
  t.equal(quota?.cores, 0.5);
  t.equal(quota?.usageUs(), 3_000_000);
  t.equal(
    cgroupQuota(
      files({
        '/proc/self/cgroup': '1:cpu:/\n2:cpuacct:/\n0::/\n',
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
        '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
      }),
    ),
    undefined,
  );
});

t.test("the gateway's CPU counts its children's children: ffmpeg started by a spawner", async (t) => {
  // A shell (the spawner) whose own child spins: the grandchild's time is in the figure.
  const shell = spawn('sh', ['-c', 'sh -c "while :; do :; done" & echo $!; wait'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const spinning = await new Promise<number>((resolve) => shell.stdout.once('data', (d: Buffer) => resolve(Number(d))));
  t.teardown(() => {
    process.kill(spinning, 'SIGKILL');
    shell.kill('SIGKILL');
  });
  await waitFor('the grandchild has spun', async () => processCpuSeconds(spinning) >= 0.3 || undefined, 20_000);
  const grandchild = processCpuSeconds(spinning);
  // This process's own time read first: the figure's own part, read after, is no less.
  const { user, system } = process.cpuUsage();
  const others = gatewayCpuSeconds() - (user + system) / 1e6;
  t.ok(others >= grandchild, `${others.toFixed(2)} s for the processes below, the grandchild alone ${grandchild} s`);
});
