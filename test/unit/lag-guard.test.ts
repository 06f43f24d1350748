import t from 'tap';
import { LagGuard } from '../../src/links/lag-guard.js';
import type { TagSink } from '../../src/media/sinks.js';

// A destination that receives less than it is sent: the guard drops media up to a keyframe once
// the oldest undelivered media is too old, and resumes when it has caught up.

/** Frames of a 720p stream's size (~20 KB): a few of them exceed what is normally in flight. */
const frame = (first: number): Buffer => Buffer.concat([Buffer.from([first, 1, 0, 0, 0]), Buffer.alloc(20_000, 9)]);
const KEY = frame(0x17);
/** A video frame of `bytes` bytes: `first` tells a keyframe (0x17) from an inter frame (0x27). */
const sized = (first: number, bytes: number): Buffer =>
  Buffer.concat([Buffer.from([first, 1, 0, 0, 0]), Buffer.alloc(bytes, 9)]);
const INTER = frame(0x27);
const VIDEO_HEADER = Buffer.from([0x17, 0, 0, 0, 0, 1]);
const AUDIO = Buffer.from([0xaf, 1, 5, 5]);

function setup(maxLagMs: number): {
  guard: LagGuard;
  sent: string[];
  tick: (ms: number) => void;
  deliverAll: () => void;
} {
  let now = 0;
  const probe = { bytesWritten: 0, undeliveredBytes: 0 };
  const sent: string[] = [];
  const output: TagSink = {
    writeMetadata: () => sent.push('meta'),
    writeVideo: (ts, body) => {
      sent.push(`${body[1] === 0 ? 'header' : body[0] === 0x17 ? 'key' : 'inter'}@${ts}`);
      probe.bytesWritten += body.length;
      probe.undeliveredBytes += body.length;
    },
    writeAudio: (ts, body) => {
      sent.push(`audio@${ts}`);
      probe.bytesWritten += body.length;
      probe.undeliveredBytes += body.length;
    },
  };
  const guard = new LagGuard(output, probe, maxLagMs, () => now);
  return { guard, sent, tick: (ms) => void (now += ms), deliverAll: () => void (probe.undeliveredBytes = 0) };
}

/**
 * A guard before a destination that has everything written `delayMs` ago, on the test's clock
 * (`clock.now`, ms).
 */
function delayedDestination(delayMs: number, maxLagMs: number): { guard: LagGuard; clock: { now: number } } {
  const clock = { now: 0 };
  const written: [at: number, bytes: number][] = [];
  let bytesWritten = 0;
  const probe = {
    get bytesWritten() {
      return bytesWritten;
    },
    get undeliveredBytes() {
      return written.filter(([at]) => at > clock.now - delayMs).reduce((sum, [, bytes]) => sum + bytes, 0);
    },
  };
  const write = (_ts: number, body: Buffer): void => {
    bytesWritten += body.length;
    written.push([clock.now, body.length]);
  };
  const output = { writeMetadata: () => undefined, writeVideo: write, writeAudio: write };
  return { guard: new LagGuard(output, probe, maxLagMs, () => clock.now), clock };
}

t.test('a destination that keeps up gets everything', async (t) => {
  const { guard, sent, tick, deliverAll } = setup(1000);
  for (let i = 0; i < 100; i++) {
    guard.writeVideo(i * 33, i % 60 === 0 ? KEY : INTER);
    tick(33);
    deliverAll();
  }
  t.equal(sent.length, 100);
  t.equal(guard.framesDropped, 0);
  t.equal(guard.lagMs, 0);
});

t.test(
  'past the lag limit media is dropped up to a keyframe that comes once caught up; headers always pass',
  async (t) => {
    const { guard, sent, tick, deliverAll } = setup(1000);
    guard.writeVideo(0, VIDEO_HEADER);
    for (let i = 0; i < 40; i++) {
      guard.writeVideo(i * 33, i === 0 ? KEY : INTER);
      guard.writeAudio(i * 33, AUDIO);
      tick(33); // nothing is delivered: the destination has stopped reading
    }
    t.ok(guard.lagMs > 1000, `lag ${guard.lagMs} ms`);
    const before = guard.framesDropped;
    t.ok(before > 0, `${before} frames dropped so far`);
    guard.writeVideo(2000, VIDEO_HEADER);
    t.equal(sent.at(-1), 'header@2000', 'a codec header goes through while dropping');
    guard.writeVideo(2033, KEY);
    t.not(sent.at(-1), 'key@2033', 'a keyframe while still behind is dropped too');
    deliverAll();
    guard.writeVideo(2066, INTER);
    t.not(sent.at(-1), 'inter@2066', 'caught up, but no keyframe yet: still dropping');
    guard.writeVideo(2100, KEY);
    t.equal(sent.at(-1), 'key@2100', 'resumes at the next keyframe once caught up');
    guard.writeAudio(2100, AUDIO);
    t.equal(sent.at(-1), 'audio@2100', 'and audio with it');
    t.equal(guard.framesDropped, before + 2);
  },
);

t.test('0 turns the guard off', async (t) => {
  const { guard, sent, tick } = setup(0);
  for (let i = 0; i < 200; i++) {
    guard.writeVideo(i * 33, INTER);
    tick(33);
  }
  t.equal(sent.length, 200);
  t.equal(guard.framesDropped, 0);
});

t.test(
  'a destination that keeps up is not taken for a slow one when the stream grows from a still picture to live video',
  async (t) => {
    // The destination has everything written at least 200 ms ago.
    const { guard, clock } = delayedDestination(200, 1000);
    const still = (first: number): Buffer => Buffer.concat([Buffer.from([first, 1, 0, 0, 0]), Buffer.alloc(300, 9)]);
    // Three seconds of the still picture (a few KB a second), then live video (600 KB a second).
    for (let i = 0; i < 90; i++) {
      guard.writeVideo(i * 33, still(i % 60 === 0 ? 0x17 : 0x27));
      clock.now += 33;
    }
    for (let i = 90; i < 180; i++) {
      guard.writeVideo(i * 33, i === 90 ? KEY : INTER);
      clock.now += 33;
    }
    t.equal(guard.framesDropped, 0, 'nothing dropped: the destination is 200 ms behind, at the rate it is sent');
  },
);

t.test(
  "a still picture's keyframes, written at once every 2 s, are not measured against the little sent between them",
  async (t) => {
    // The destination keeps up: what was written 40 ms ago (a merged write's longest hold) has arrived.
    const { guard, clock } = delayedDestination(40, 1000);
    // ffmpeg's output of the still picture comes in bursts of half a second: 15 frames at once, a
    // 150 KB keyframe first every 57 frames (1.9 s), then 500 bytes a frame.
    for (let i = 0; i < 57 * 6; i++) {
      if (i % 15 === 0) clock.now = i * 33;
      guard.writeVideo(i * 33, i % 57 === 0 ? sized(0x17, 150_000) : sized(0x27, 500));
    }
    t.equal(guard.framesDropped, 0, 'nothing dropped: the destination had all of it 40 ms after it was written');
  },
);

t.test('a destination reading 50 KB/s of a 2.4 Mb/s stream: the lag stays bounded after each catch-up', async (t) => {
  let now = 0;
  let bytesWritten = 0;
  const rateBytesPerMs = 50;
  let delivered = 0;
  const probe = {
    get bytesWritten() {
      return bytesWritten;
    },
    get undeliveredBytes() {
      return bytesWritten - delivered;
    },
  };
  const write = (_ts: number, body: Buffer): void => void (bytesWritten += body.length);
  const maxLagMs = 2000;
  const guard = new LagGuard(
    { writeMetadata: () => undefined, writeVideo: write, writeAudio: write },
    probe,
    maxLagMs,
    () => now,
  );
  const lags: number[] = [];
  for (let i = 0; i < 30 * 40; i++) {
    const key = i % 60 === 0;
    guard.writeVideo(i * 33, key ? sized(0x17, 60_000) : sized(0x27, 9_000));
    now += 33;
    delivered = Math.min(bytesWritten, delivered + rateBytesPerMs * 33);
    if (i % 15 === 0) lags.push(guard.lagMs);
  }
  const settled = lags.slice(28); // after the first 14 s
  t.ok(guard.framesDropped > 0, `frames dropped (${guard.framesDropped})`);
  // Within the limit itself: after a catch-up, the guard predicts from the rate measured before
  // (it was blind for half a second, and the lag reached 2079 ms).
  t.ok(
    Math.max(...settled) <= maxLagMs,
    `lag within ${maxLagMs} ms after each catch-up (worst ${Math.max(...settled)} ms): ${settled.join(' ')}`,
  );
  t.ok(
    settled.some((lag) => lag < maxLagMs / 2),
    'and it catches up again and again',
  );
});

t.test('a backlog longer than the ring first holds keeps the age of its oldest undelivered message', async (t) => {
  let now = 0;
  const probe = { bytesWritten: 0, undeliveredBytes: 0 };
  const write = (_ts: number, body: Buffer): void => {
    probe.bytesWritten += body.length;
    probe.undeliveredBytes += body.length;
  };
  const output = { writeMetadata: () => undefined, writeVideo: write, writeAudio: write };
  const guard = new LagGuard(output, probe, 1e9, () => now);
  // The destination has all but the last `undeliveredBytes`, less the allowance in flight: the
  // first message it lacks ends past that point (message n, of INTER's size, written at n * 10 ms).
  const expected = (): number => {
    const delivered = probe.bytesWritten - probe.undeliveredBytes + 64 * 1024;
    const firstLacking = Math.floor(delivered / INTER.length);
    return firstLacking * INTER.length >= probe.bytesWritten ? 0 : now - firstLacking * 10;
  };
  const wrong: string[] = [];
  // Half of what waits is delivered each round, so the ring's head moves while it grows and wraps.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 700; i++) {
      guard.writeVideo(now, INTER);
      now += 10;
      if (guard.lagMs !== expected()) wrong.push(`round ${round}, message ${i}: ${guard.lagMs}, not ${expected()}`);
    }
    probe.undeliveredBytes = Math.floor(probe.undeliveredBytes / 2);
  }
  t.same(wrong.slice(0, 5), [], 'the age of the first message the destination lacks, after every write');
  t.equal(guard.lagMs, guard.lagMs, 'reading it again changes nothing');
  t.equal(guard.framesDropped, 0);
});
