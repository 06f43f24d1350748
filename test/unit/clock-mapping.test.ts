import t from 'tap';
import { seededRandom } from '../../kit/stats.js';
import { ClockMapping, FirstPackets } from '../../src/media/clock-mapping.js';

t.test('ClockMapping maps RTP time onto the wall clock across a timestamp wrap', async (t) => {
  const clock = new ClockMapping(90000, 0xffffff00, 1000);
  t.equal(clock.captureMs(0xffffff00 + 90000 - 2 ** 32), 2000);
  t.equal(clock.captureMs(0xffffff00 - 9000), 900);
});

t.test(
  'ClockMapping crosses 2^31 ticks from the first packet by ordinary steps, then every 2^32 wrap of the field, unseen',
  async (t) => {
    for (const [kind, rate, stepTicks] of [
      ['video', 90000, 3000],
      ['audio', 48000, 960],
    ] as const) {
      const first = 0x7fff0000; // 2^31 ticks from it come soon, then the field wraps
      const jumps: number[] = [];
      const clock = new ClockMapping(rate, first, 5000, 5000, ({ jumpMs }) => jumps.push(jumpMs));
      const stepMs = (stepTicks * 1000) / rate;
      let worst = 0;
      let previous = 5000;
      // 3 × 2^32 ticks: 39 h 46 min of video, 74 h 33 min of audio, a packet each frame.
      const packets = Math.ceil((3 * 2 ** 32) / stepTicks);
      for (let i = 1; i <= packets; i++) {
        const at = clock.next((first + i * stepTicks) % 2 ** 32, 5000 + i * stepMs);
        worst = Math.max(worst, Math.abs(at - previous - stepMs));
        previous = at;
      }
      t.ok(worst < 1e-6, `${kind}: every packet ${stepMs} ms after the one before (worst error ${worst} ms)`);
      t.equal(
        Math.round(previous - 5000),
        Math.round(packets * stepMs),
        `${kind}: ${Math.round((packets * stepMs) / 3_600_000)} h after the first packet`,
      );
      t.same(jumps, [], `${kind}: no discontinuity was seen`);
    }
  },
);

/**
 * A sender whose clock runs `skew` off ours (+0.005: its 20 ms of sound take 19.9 ms of ours), its
 * packets arriving 5 ms after capture plus up to 40 ms of jitter, a busy thread holding them 300 ms
 * now and then. Returns the mapping's worst distance from the truth after it settled, its worst
 * packet-to-packet step off the sender's real step, and how far its rate came to the sender's.
 */
function follow(skew: number, seconds: number, seed: number) {
  const next = seededRandom(seed);
  const clock = new ClockMapping(48000, 123456, 5, 5, () => {
    throw new Error('no discontinuity');
  });
  const realStep = 20 / (1 + skew);
  let worstError = 0;
  let worstStep = 0;
  let previous = 5;
  let heldUntil = 0;
  const packets = Math.round((seconds * 1000) / realStep);
  for (let i = 1; i <= packets; i++) {
    const captured = i * realStep;
    if (next() < 0.0005) heldUntil = captured + 300;
    const arrival = Math.max(captured + 5 + 40 * next() ** 3, heldUntil);
    const at = clock.next((123456 + i * 960) % 2 ** 32, arrival);
    if (captured > 60_000) worstError = Math.max(worstError, Math.abs(at - (captured + 5)));
    worstStep = Math.max(worstStep, Math.abs(at - previous - realStep));
    previous = at;
  }
  return { worstError, worstStep, rate: clock.rate };
}

t.test(
  'ClockMapping follows a sender whose clock runs fast or slow, on its least-delayed packets, without a step',
  async (t) => {
    for (const skew of [0.005, -0.005, 0.0001, -0.0001, 0.00005]) {
      const ppm = Math.round(skew * 1e6);
      // ±0.5 % for ten minutes; the sound cards of real laptops (±100 and 50 ppm) for a day.
      const seconds = Math.abs(skew) >= 0.001 ? 600 : 86_400;
      const { worstError, worstStep, rate } = follow(skew, seconds, 7 + ppm);
      t.ok(worstError <= 10, `${ppm} ppm: within ${worstError.toFixed(1)} ms of the truth once settled`);
      t.ok(worstStep <= 0.25, `${ppm} ppm: each packet its real 20 ms on, within ${worstStep.toFixed(3)} ms`);
      t.ok(Math.abs(rate - 1 - skew) < 1e-4, `${ppm} ppm: measured ${((rate - 1) * 1e6).toFixed(0)} ppm`);
    }
  },
);

t.test('ClockMapping follows a sender as far as 1 % off, no further', async (t) => {
  const { rate } = follow(0.03, 120, 1);
  t.equal(Math.round((rate - 1) * 1000) / 1000, 0.01, 'a clock 3 % fast is followed at 1 %');
});

t.test('ClockMapping places a track idle for longer than a wrap of its field where its clock says', async (t) => {
  for (const idleHours of [13.5, 19.5, 30]) {
    const jumps: number[] = [];
    const clock = new ClockMapping(90000, 1000, 0, 0, ({ jumpMs }) => jumps.push(jumpMs));
    clock.next(1000 + 3000, 33.3);
    const idleMs = idleHours * 3_600_000;
    const at = clock.next((1000 + 3000 + idleMs * 90) % 2 ** 32, 33.3 + idleMs);
    t.equal(Math.round(at - 33.3), idleMs, `${idleHours} h idle: back ${idleHours} h on, not in the past`);
    t.same(jumps, [], `${idleHours} h idle: no discontinuity`);
  }
});

t.test(
  'ClockMapping takes one leap of 2^31 ticks as a new timeline, on purpose and told; pauses and late packets are not leaps',
  async (t) => {
    const jumps: number[] = [];
    const clock = new ClockMapping(90000, 1000, 0, 0, ({ jumpMs }) => jumps.push(jumpMs));
    t.equal(clock.next(1000 + 3000, 33.3), 3000 / 90);
    t.equal(
      Math.round(clock.next(1000 + 2 ** 31 + 6000, 1033)),
      1033,
      'a leap of 2^31 ticks 1 s later: placed 1 s after the packet before',
    );
    t.same(
      jumps,
      [Math.round((2 ** 31 + 3000) / 90 - (1033 - 3000 / 90))],
      'and told, with its size: forward, the way nearer the time that passed',
    );
    t.equal(Math.round(clock.next(1000 + 2 ** 31 + 9000, 1066)), 1033 + 33, 'the new timeline goes on from there');
    t.equal(Math.round(clock.next(1000 + 2 ** 31 + 9000 - 900000, 1100)), 1100, 'a step 10 s back: a new timeline too');
    t.equal(jumps.length, 2);
    const after = clock.next(1000 + 2 ** 31 + 9000 - 900000 + 90000 * 12, 13100);
    t.equal(Math.round(after), 13100, 'a pause of 12 s, as long in RTP time as in arrival: the same timeline');
    t.equal(
      Math.round(clock.next(1000 + 2 ** 31 + 9000 - 900000 + 90000 * 12 - 9000, 13120)),
      13000,
      'a late packet (a retransmission) is placed 100 ms back',
    );
    t.equal(
      Math.round(clock.next(1000 + 2 ** 31 + 9000 - 900000 + 90000 * 12 + 3000, 20000)),
      13134,
      "packets held 7 s on the gateway's side (a busy thread): still the same timeline",
    );
    t.equal(
      Math.round(clock.next(1000 + 2 ** 31 + 9000 - 900000 + 90000 * 22 + 3000, 23200)),
      23134,
      '10 s of packets lost while the gateway was starved, the next read 3.2 s after the one before (read late): the 10 s its timestamp says',
    );
    t.equal(jumps.length, 2, 'none of these was a discontinuity');
    t.equal(
      Math.round(clock.captureMs(1000 + 2 ** 31 + 9000 - 900000 + 90000 * 12 + 6000)),
      13167,
      'any timestamp near the latest, unwrapped against it',
    );
  },
);

t.test("ClockMapping places a sender's backlog sent at once where its timestamps say", async (t) => {
  const burst = new ClockMapping(48000, 0, 0, 0);
  const placed = Array.from({ length: 150 }, (_, i) => burst.next(i * 960, 1 + i * 0.01));
  t.same(
    placed.map((ms, i) => Math.round(ms - i * 20)),
    placed.map(() => 0),
    'a burst of 3 s at once: every packet where its timestamp says',
  );
});

t.test("FirstPackets: a track's start is its least-delayed first packet, not its first", async (t) => {
  t.test('3 s of sound read at once, late: the search lasts the burst and anchors on its last packet', async (t) => {
    const first = new FirstPackets(48000, 1000, 3000, 1000);
    // 150 packets of 20 ms, all read within 1.5 ms of the first.
    const ends = Array.from({ length: 150 }, (_, i) => first.add(1000 + (i + 1) * 960, 3000 + (i + 1) * 0.01));
    t.same([...new Set(ends)], [false], 'every packet of the burst lowers the least delay: the search goes on');
    t.equal(first.add(1000 + 151 * 960, 3022), false, 'the first packet on time');
    t.equal(first.add(1000 + 152 * 960, 3042), false, 'the second');
    t.equal(first.add(1000 + 153 * 960, 3062), true, 'the third: 60 ms of sound on time end it');
    // The burst's last packet, read 1.5 ms into it, says where the first was captured.
    t.equal(Math.round(first.anchor.atMs * 10) / 10, 1.5, 'the first packet is placed 3 s before it was read');
  });
  t.test('a burst read slowly, with a hiccup of the reader in it: the search goes on to its end', async (t) => {
    const first = new FirstPackets(48000, 0, 3000, 1000);
    const ends: boolean[] = [];
    // 3 s of sound read in 300 ms (2 ms a packet), the reader held 40 ms after the 50th packet.
    for (let i = 1; i <= 150; i++) ends.push(first.add(i * 960, 3000 + i * 2 + (i > 50 ? 40 : 0)));
    t.same([...new Set(ends)], [false], 'no packet of the burst ends it');
    // Then on time, as the burst's last packet (captured at 340 on the reader's clock) says.
    for (let i = 151; i <= 153; i++) ends.push(first.add(i * 960, 340 + i * 20 + 1));
    t.equal(ends.at(-1), true, 'packets on time after it do');
    t.ok(Math.abs(first.anchor.atMs - 340) < 1, `anchored on the burst's end: ${first.anchor.atMs.toFixed(1)}`);
  });
  t.test('packets on time: the first is the start, found once 60 ms of them came', async (t) => {
    const first = new FirstPackets(48000, 5, 500, 1000);
    t.equal(first.add(5 + 960, 520.4), false);
    t.equal(first.add(5 + 2 * 960, 540.2), false);
    t.equal(first.add(5 + 3 * 960, 560.9), true);
    t.equal(first.anchor.atMs, 500);
  });
  t.test('a first packet 10 ms late: the start is the next one, found 60 ms after it', async (t) => {
    const first = new FirstPackets(90000, 0, 10, 1000);
    t.equal(first.add(0, 10.1), false, "a frame's second packet says nothing of the start");
    t.equal(first.add(3000, 33.4), false, 'the second frame lowers the least delay by 10 ms');
    t.equal(first.add(6000, 66.8), false);
    t.equal(first.add(9000, 100.1), true, 'two frames on time after it');
    t.equal(Math.round(first.anchor.atMs * 10) / 10, 0.1);
  });
  t.test('the search ends once its time has passed, and a leap of the RTP time says nothing', async (t) => {
    const first = new FirstPackets(48000, 0, 0, 100);
    t.equal(first.add(48000 * 600, 20), false, 'ten minutes on in 20 ms: a new timeline, left to the mapping');
    t.equal(first.anchor.atMs, 0);
    t.equal(first.add(960, 0.5), false);
    t.equal(first.add(1920, 100), true, 'settled after 100 ms, whatever came');
  });
});
