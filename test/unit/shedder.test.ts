import pino from 'pino';
import t from 'tap';
import { SHED_BEHIND_MS, SHED_SPACING_MS, Shedder, type Sheddable } from '../../src/pushes/shedder.js';

class FakePush implements Sheddable {
  isUp = true;
  isShed = false;
  behindSince: number | undefined;
  reason: string | undefined;
  unshedAt: number | undefined;
  constructor(
    readonly mediaSessionId: string,
    readonly createdMonoMs: number,
    private readonly clock: () => number,
  ) {}
  shed(reason: string): boolean {
    if (!this.isUp) return false;
    this.isUp = false;
    this.isShed = true;
    this.reason = reason;
    return true;
  }
  unshed(): void {
    this.unshedAt = this.clock();
    this.isShed = false;
    this.isUp = true;
  }
}

function setup(count: number) {
  let clock = 0;
  let saturated = false;
  const pushes = Array.from({ length: count }, (_, i) => new FakePush(`p${i}`, i * 100, () => clock));
  const shedder = new Shedder(
    () => pushes,
    () => saturated,
    pino({ level: 'silent' }),
    () => clock,
  );
  shedder.close();
  /** Runs the shedder's checks once a second for `ms`. */
  const run = (ms: number): void => {
    for (const end = clock + ms; clock < end;) {
      clock += 1000;
      shedder.check();
    }
  };
  return { pushes, shedder, run, at: () => clock, saturate: (on: boolean) => (saturated = on) };
}

t.test(
  'a push behind on a saturated machine sheds the newest running push, one per spacing, with a reason that says so',
  async (t) => {
    const { pushes, shedder, run, at, saturate } = setup(5);
    saturate(true);
    pushes[1]!.behindSince = at();
    run(SHED_BEHIND_MS - 1000);
    t.same(pushes.filter((p) => p.isShed).length, 0, 'not before it has been behind for SHED_BEHIND_MS');
    run(1000);
    t.same(
      pushes.filter((p) => p.isShed).map((p) => p.mediaSessionId),
      ['p4'],
      'the newest is shed, not the one behind',
    );
    t.match(pushes[4]!.reason, /the machine is saturated \(out of CPU\): 1 push behind for 10 s/);
    run(SHED_SPACING_MS - 1000);
    t.equal(shedder.waiting, 1, 'no second one within the spacing');
    run(1000);
    t.same(
      pushes.filter((p) => p.isShed).map((p) => p.mediaSessionId),
      ['p3', 'p4'],
      'then the next newest',
    );
  },
);

t.test(
  'nothing is shed when the machine is saturated but no push is behind, nor when one is behind on a machine with CPU to spare',
  async (t) => {
    const { pushes, run, at, saturate } = setup(3);
    saturate(true);
    run(60_000);
    t.same(pushes.filter((p) => p.isShed).length, 0, 'saturated by others: the pushes keep up');
    saturate(false);
    pushes[0]!.behindSince = at();
    run(60_000);
    t.same(
      pushes.filter((p) => p.isShed).length,
      0,
      'behind, but not for want of CPU (the destination is the lag guard’s)',
    );
  },
);

t.test('once the machine is calm, shed pushes start again one at a time, oldest shed first', async (t) => {
  const { pushes, shedder, run, at, saturate } = setup(4);
  saturate(true);
  pushes[0]!.behindSince = at();
  run(SHED_BEHIND_MS + SHED_SPACING_MS);
  t.same(
    pushes.filter((p) => p.isShed).map((p) => p.mediaSessionId),
    ['p2', 'p3'],
    'the two newest shed',
  );
  saturate(false);
  pushes[0]!.behindSince = undefined;
  run(2000);
  t.equal(shedder.waiting, 2, 'not within 3 s of the load');
  run(2000);
  t.same(
    pushes.filter((p) => p.isShed).map((p) => p.mediaSessionId),
    ['p2'],
    'p3, shed first, starts first',
  );
  run(5000);
  const [first, second] = [pushes[3]!.unshedAt!, pushes[2]!.unshedAt!];
  t.ok(second - first >= 1500, `the next one ${second - first} ms later, not with it`);
  t.same(
    pushes.filter((p) => p.isShed),
    [],
    'all started again',
  );
});

t.test('a shed push that is ended meanwhile is forgotten', async (t) => {
  const { pushes, shedder, run, at, saturate } = setup(2);
  saturate(true);
  pushes[0]!.behindSince = at();
  run(SHED_BEHIND_MS);
  t.equal(shedder.waiting, 1);
  pushes.pop();
  run(1000);
  t.equal(shedder.waiting, 0);
});
