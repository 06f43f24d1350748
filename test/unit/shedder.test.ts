import pino from 'pino';
import t from 'tap';
import { Shedder, SHED_BEHIND_MS, SHED_SPACING_MS, UNSHED_AFTER_MS, type ShedPlane } from '../../src/plane/shedder.js';
import { sheddableSchema, type Sheddable } from '../../src/pushes/info.js';

// The machine's shedder against a fake of the machine's plane: every answer is checked
// against the schema the plane's routed calls check it with (`HOLDER_METHODS`), and a push is shed
// only as `Push.shed` sheds one (running, not shed already).

interface FakePush extends Sheddable {
  /** CPU (cores) it uses while it runs. */
  cores: number;
}

function setup(pushes: Partial<FakePush>[], floor = 1) {
  let clock = 100_000;
  let cpu = 50;
  /** The gateway's CPU seconds: what its running pushes use, and the share of what shed pushes freed the others take. */
  let gatewaySeconds = 0;
  let taken = 0;
  const all: FakePush[] = pushes.map((p, i) => ({
    mediaSessionId: `p${i}`,
    createdAt: new Date(1_800_000_000_000 + i).toISOString(),
    createdMonoMs: i * 100,
    running: true,
    shed: false,
    behindSince: null,
    cost: 1,
    cores: 0.1,
    cpuSeconds: 0,
    ...p,
  }));
  const shedCalls: string[] = [];
  const unshedCalls: string[] = [];
  const plane: ShedPlane = {
    sheddable: async () => all.map(({ cores: _cores, ...p }) => sheddableSchema.parse(p)),
    shed: async (id) => {
      const push = all.find((p) => p.mediaSessionId === id)!;
      if (!push.running || push.shed) return false;
      push.running = false;
      push.shed = true;
      push.behindSince = null;
      shedCalls.push(id);
      return true;
    },
    unshed: async (id) => {
      const push = all.find((p) => p.mediaSessionId === id)!;
      if (!push.shed) return false;
      push.shed = false;
      push.running = true;
      unshedCalls.push(id);
      return true;
    },
  };
  const shedder = new Shedder(
    plane,
    {
      floor,
      cpuPercent: () => cpu,
      gatewayCpuSeconds: () => gatewaySeconds,
      now: () => clock,
    },
    pino({ level: 'silent' }),
  );
  shedder.close();
  /** Runs the shedder's checks for `ms`, a second at a time. */
  const run = async (ms: number): Promise<void> => {
    for (const end = clock + ms; clock < end;) {
      clock += 1000;
      for (const p of all) if (p.running) p.cpuSeconds += p.cores;
      const cores = (pushes: FakePush[]): number => pushes.reduce((sum, p) => sum + p.cores, 0);
      gatewaySeconds += cores(all.filter((p) => p.running)) + taken * cores(all.filter((p) => p.shed));
      await shedder.check();
    }
  };
  return {
    all,
    shedder,
    shedCalls,
    unshedCalls,
    run,
    now: () => clock,
    saturate: (on: boolean) => void (cpu = on ? 100 : 40),
    /** The share of a shed push's CPU the other pushes take (0: another program takes it all). */
    othersTake: (share: number) => void (taken = share),
  };
}

t.test('a standby push, the newest, does not stop shedding: the newest running push is shed', async (t) => {
  const s = setup([{}, {}, { running: false }]);
  s.saturate(true);
  s.all[0]!.behindSince = s.now();
  await s.run(SHED_BEHIND_MS + 1000);
  t.same(s.shedCalls, ['p1'], 'p2 is in standby (shed takes no push not running): p1 is shed');
});

t.test('of the newest, the push that frees the most is shed: its own transcoder before a shared one', async (t) => {
  const s = setup([{ cost: 1 }, { cost: 2 }, { cost: 0 }, { cost: 1 }]);
  s.saturate(true);
  s.all[0]!.behindSince = s.now();
  await s.run(SHED_BEHIND_MS + 1000);
  t.same(s.shedCalls, ['p1'], 'p1 transcodes with an encoder of its own; p2, newer, shares one and frees nothing');
});

t.test('never below the floor, never the last push', async (t) => {
  const s = setup([{}, {}, {}], 2);
  s.saturate(true);
  for (const p of s.all) p.behindSince = s.now();
  s.othersTake(0.5);
  await s.run(5 * SHED_SPACING_MS);
  t.same(s.shedCalls, ['p2'], 'one shed, then the floor of 2 running');
  const alone = setup([{}]);
  alone.saturate(true);
  alone.all[0]!.behindSince = alone.now();
  await alone.run(3 * SHED_SPACING_MS);
  t.same(alone.shedCalls, [], 'the last push is never shed');
});

t.test(
  'a program beside the gateway taking the CPU: one shed, and no more when it gave the others nothing',
  async (t) => {
    const s = setup([{}, {}, {}, {}, {}]);
    s.saturate(true);
    for (const p of s.all) p.behindSince = s.now();
    await s.run(5 * SHED_SPACING_MS);
    t.same(s.shedCalls, ['p4'], 'the others stayed behind, their CPU the same: the hog took what was freed');
    // Load that is the pushes': each shed gives the others its CPU, and some catch up.
    const ours = setup([{}, {}, {}, {}, {}]);
    ours.saturate(true);
    for (const p of ours.all) p.behindSince = ours.now();
    ours.othersTake(1);
    await ours.run(2 * SHED_SPACING_MS + 2000);
    t.same(ours.shedCalls, ['p4', 'p3'], 'the others got what p4 freed: shedding goes on');
  },
);

t.test(
  'a push shed twice waits minutes of calm to start again, not seconds; no flapping over 10 minutes',
  async (t) => {
    const s = setup([{}, {}, {}]);
    // A load that comes back whenever p2 runs again (each time it is started, it saturates the machine).
    const cycle = async (ms: number): Promise<void> => {
      for (let i = 0; i < ms; i += 1000) {
        s.saturate(s.all[2]!.running);
        s.all[0]!.behindSince = s.all[2]!.running ? (s.all[0]!.behindSince ?? s.now()) : null;
        await s.run(1000);
      }
    };
    await cycle(10 * 60_000);
    t.ok(s.shedCalls.length <= 4, `shed ${s.shedCalls.length} times in 10 minutes (${s.shedCalls.join(', ')})`);
    t.ok(
      s.shedCalls.every((id) => id === 'p2'),
      'always the same push',
    );
    t.equal(s.unshedCalls.length, s.shedCalls.length - 1, 'started again between, one fewer');
    // Its second start came only after the longer calm.
    t.ok(UNSHED_AFTER_MS[1] >= 120_000, 'the second wait is minutes');
  },
);

t.test('the first shed push starts again after 5 s of calm, once', async (t) => {
  const s = setup([{}, {}]);
  s.saturate(true);
  s.all[0]!.behindSince = s.now();
  await s.run(SHED_BEHIND_MS + 1000);
  t.same(s.shedCalls, ['p1']);
  s.saturate(false);
  s.all[0]!.behindSince = null;
  await s.run(UNSHED_AFTER_MS[0] - 2000);
  t.same(s.unshedCalls, [], 'not before the calm has lasted');
  await s.run(3000);
  t.same(s.unshedCalls, ['p1']);
  t.equal(s.shedder.waiting, 0);
});
