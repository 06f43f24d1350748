import t from 'tap';
import { KEYFRAME_CHECK_MS, KeyframeSchedule, type FrameTimes } from '../../src/publishers/keyframes.js';

// The keyframe schedule in fake time: a camera at 30 fps that sends a keyframe only when asked,
// `answerMs` after the request (the encoder's and the network's delay), and otherwise never, so
// every keyframe in the stream is one the schedule asked for. 5.5 s of stream take milliseconds.

const FRAME_MS = 33;

/** Runs the camera and the schedule for `durationMs` of fake time; the keyframes' capture times. */
function run(answerMs: number, intervalMs: number, durationMs: number): number[] {
  let now = 0;
  let frame = 0;
  let keyDueAt: number | undefined = 0; // the stream starts with a keyframe
  const frames: { -readonly [K in keyof FrameTimes]: FrameTimes[K] } = {
    latestCaptureMs: 0,
    latestKeyframeMs: undefined,
    cachedKeyframeMs: undefined,
  };
  let previousWasFrame = false;
  const keyframesAt: number[] = [];
  const schedule = new KeyframeSchedule(
    intervalMs,
    () => (keyDueAt ??= frame * FRAME_MS + answerMs),
    frames,
    () => now,
  );
  for (; now <= durationMs; now++) {
    if (now % FRAME_MS === 0) {
      const captureMs = frame * FRAME_MS;
      const key = keyDueAt !== undefined && captureMs >= keyDueAt;
      frames.latestCaptureMs = captureMs;
      if (key) {
        keyDueAt = undefined;
        keyframesAt.push(captureMs);
        // A sink can start from a keyframe that has a frame before it (not the stream's first).
        if (previousWasFrame) frames.cachedKeyframeMs = captureMs;
        frames.latestKeyframeMs = captureMs;
      }
      previousWasFrame = true;
      frame++;
    }
    if (now % KEYFRAME_CHECK_MS === 0) schedule.check();
  }
  return keyframesAt;
}

function largestGap(times: number[]): number {
  let largest = 0;
  for (let i = 1; i < times.length; i++) largest = Math.max(largest, times[i]! - times[i - 1]!);
  return largest;
}

for (const answerMs of [0, 250]) {
  t.test(`keyframes stay within the interval when the sender answers in ${answerMs} ms`, async (t) => {
    const keyframesAt = run(answerMs, 1000, 5500);
    const after = keyframesAt.filter((ms) => ms > 1000);
    t.comment(keyframesAt.join(' '));
    t.ok(after.length >= 4, `${after.length} keyframes after the first second`);
    const gap = largestGap(after);
    t.ok(gap <= 1000, `largest gap ${gap} ms is within the 1000 ms interval`);
    t.ok(gap >= 500, `largest gap ${gap} ms: keyframes are not asked for much more often than needed`);
  });
}

t.test('however slow the answers, the lead stays within half the interval', async (t) => {
  const after = run(2000, 1000, 20_000).filter((ms) => ms > 1000);
  const gaps = after.slice(1).map((ms, i) => ms - after[i]!);
  t.ok(gaps.length >= 5, `${gaps.length} gaps`);
  t.ok(Math.min(...gaps) >= 500, `the shortest gap, ${Math.min(...gaps)} ms, is at least half the interval`);
});

t.test('a request is repeated after 300 ms while no usable keyframe is cached', async (t) => {
  let now = 0;
  let sent = 0;
  const schedule = new KeyframeSchedule(
    2000,
    () => sent++,
    { latestCaptureMs: 0, latestKeyframeMs: undefined, cachedKeyframeMs: undefined },
    () => now,
  );
  for (; now <= 1000; now += KEYFRAME_CHECK_MS) schedule.check();
  t.equal(sent, 4, 'at 0, 300, 600 and 900 ms');
  schedule.request();
  t.equal(sent, 4, 'a request right after one is not sent again');
  schedule.request(true);
  t.equal(sent, 5, 'unless forced');
});
