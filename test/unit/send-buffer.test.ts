import t, { type Test } from 'tap';
import { SendBuffer, type SendBufferSettings } from '../../src/links/send-buffer.js';
import type { SendBufferState } from '../../src/links/link.js';

const settings: SendBufferSettings = { enabled: true, startMs: 300, maxMs: 2000, pollingMs: 100, maxBufferings: -1 };

/** A buffer on a clock the test moves, recording what it sends and when. */
function setup(t: Test, overrides: Partial<SendBufferSettings> = {}) {
  let clock = 0;
  const sent: { kind: string; timestamp: number; at: number }[] = [];
  const states: SendBufferState[] = [];
  const buffer = new SendBuffer(
    {
      writeMetadata: () => sent.push({ kind: 'metadata', timestamp: -1, at: clock }),
      writeVideo: (timestamp) => sent.push({ kind: 'video', timestamp, at: clock }),
      writeAudio: (timestamp) => sent.push({ kind: 'audio', timestamp, at: clock }),
    },
    { ...settings, ...overrides },
    () => clock,
    (state) => states.push(state),
  );
  t.teardown(() => buffer.close());
  /** Moves the clock to `to` in polling steps, as the timer would. */
  const advance = (to: number, step = 10): void => {
    while (clock < to) {
      clock = Math.min(to, clock + step);
      buffer.poll();
    }
  };
  return { buffer, sent, states, advance, at: (ms: number) => void (clock = ms) };
}

t.test('holds media until start_size is buffered, then sends it paced by its timestamps', async (t) => {
  const { buffer, sent, advance } = setup(t);
  // Frames every 40 ms arrive in bursts: five at once every 200 ms.
  for (let burst = 0; burst < 10; burst++) {
    advance(burst * 200);
    for (let i = 0; i < 5; i++) buffer.writeVideo((burst * 5 + i) * 40, Buffer.alloc(1));
    if (burst === 0) t.equal(sent.length, 0, 'nothing sent while less than 300 ms is held');
  }
  advance(4000, 5);
  t.equal(sent.length, 50, 'everything is sent in the end');
  // The first frames were already older than 300 ms behind the newest when sending began.
  const lateness = sent.slice(5).map((s) => s.at - s.timestamp);
  t.ok(
    Math.max(...lateness) - Math.min(...lateness) <= 5,
    `sent evenly: lateness ${Math.min(...lateness)}–${Math.max(...lateness)} ms`,
  );
  t.ok(Math.max(...lateness) <= 300, 'no later than start_size');
  t.same(
    sent.map((s) => s.timestamp),
    [...sent.map((s) => s.timestamp)].sort((a, b) => a - b),
    'in order',
  );
  t.equal(buffer.state, 'buffering', 'the input ended: the buffer ran dry');
});

t.test('media already older than start_size (a cache replay) goes at once', async (t) => {
  const { buffer, sent } = setup(t);
  buffer.writeMetadata({});
  for (let ts = 0; ts <= 1000; ts += 40) buffer.writeVideo(ts, Buffer.alloc(1));
  t.equal(sent.length, 0, 'written in one go: sent at the next poll');
  buffer.poll();
  t.equal(sent[0]!.kind, 'metadata', 'metadata keeps its place');
  t.equal(sent.at(-1)!.timestamp, 680, 'all but the newest 300 ms sent at once');
  t.equal(buffer.state, 'playing');
});

t.test('never holds more than max_size, nor anything longer: the delay it adds is bounded', async (t) => {
  const { buffer, sent, advance } = setup(t, { startMs: 300, maxMs: 1000 });
  // Input faster than real time: 2 s of media per second.
  let highest = 0;
  for (let i = 0; i < 100; i++) {
    buffer.writeAudio(i * 40, Buffer.alloc(1));
    advance((i + 1) * 20);
    highest = Math.max(highest, buffer.levelMs);
  }
  t.ok(highest <= 1000, `at most 1000 ms held after each poll: ${highest} ms`);
  // A trickle: one frame, then nothing; it is not held past max_size.
  const { buffer: slow, sent: slowSent, advance: slowAdvance } = setup(t, { startMs: 300, maxMs: 1000 });
  slow.writeVideo(0, Buffer.alloc(1));
  slowAdvance(990);
  t.equal(slowSent.length, 0);
  slowAdvance(1000);
  t.equal(slowSent.length, 1, 'sent after max_size of waiting');
  t.ok(sent.length > 60);
});

t.test(
  'running dry is a buffering: it fills to start_size again; beyond max_bufferings it passes media on',
  async (t) => {
    const { buffer, sent, states, advance } = setup(t, { maxBufferings: 1 });
    let ts = 0;
    const feed = (from: number, to: number): void => {
      for (let at = from; at < to; at += 40, ts += 40) {
        advance(at);
        buffer.writeVideo(ts, Buffer.alloc(1));
      }
    };
    feed(0, 2000);
    advance(2600); // the input stops for 600 ms: the buffer's 300 ms run out
    t.equal(buffer.state, 'buffering');
    t.equal(buffer.bufferings, 1);
    const before = sent.length;
    feed(2600, 2800);
    t.equal(sent.length, before, 'held again until 300 ms are buffered');
    feed(2800, 4000);
    t.ok(sent.length > before);
    advance(4600); // dry again: max_bufferings (1) is used up
    t.equal(buffer.state, 'passthrough');
    buffer.writeAudio(ts, Buffer.alloc(1));
    t.equal(sent.at(-1)!.kind, 'audio', 'passed straight on');
    t.same(states, ['playing', 'buffering', 'playing', 'passthrough']);
  },
);

t.test('-1 allows any number of bufferings; close drops what is held', async (t) => {
  const { buffer, sent, advance } = setup(t);
  for (let n = 0; n < 5; n++) {
    buffer.writeVideo(n * 1000, Buffer.alloc(1));
    buffer.writeVideo(n * 1000 + 400, Buffer.alloc(1));
    advance(n * 1000 + 999);
  }
  t.equal(buffer.bufferings, 5);
  t.equal(buffer.state, 'buffering');
  buffer.writeVideo(5000, Buffer.alloc(1));
  const count = sent.length;
  buffer.close();
  advance(10000);
  t.equal(sent.length, count);
});

t.test('late video is not held behind newer audio; tracks leave in timestamp order', async (t) => {
  const { buffer, sent, advance } = setup(t);
  buffer.writeMetadata({});
  // Audio every 20 ms throughout; video every 40 ms, but frames 1000–1360 come late, at 1400.
  for (let at = 0; at <= 2000; at += 20) {
    advance(at);
    buffer.writeAudio(at, Buffer.alloc(1));
    if (at === 1400) for (let ts = 1000; ts <= 1360; ts += 40) buffer.writeVideo(ts, Buffer.alloc(1));
    if (at % 40 === 0 && (at < 1000 || at > 1360)) buffer.writeVideo(at, Buffer.alloc(1));
  }
  advance(3000);
  t.equal(sent[0]!.kind, 'metadata');
  const video = sent.filter((s) => s.kind === 'video');
  const late = video.filter((s) => s.timestamp >= 1000 && s.timestamp <= 1360);
  t.equal(late.length, 10);
  // Sending began at the first poll with 300 ms held: everything leaves 310 ms after its time.
  const lag = 310;
  const stillDue = late.filter((s) => s.timestamp + lag > 1400);
  t.equal(stillDue.length, 7);
  t.ok(
    stillDue.every((s) => s.at - s.timestamp === lag),
    'late frames still due went at their time',
  );
  t.same(
    late.filter((s) => s.timestamp + lag <= 1400).map((s) => s.at),
    [1410, 1410, 1410],
    'those already past due went at once',
  );
  t.ok(
    sent.filter((s) => s.kind === 'audio').every((s) => s.at - s.timestamp === lag),
    'audio went on at its time throughout',
  );
  for (const kind of ['audio', 'video']) {
    const order = sent.filter((s) => s.kind === kind).map((s) => s.timestamp);
    t.same(
      order,
      [...order].sort((a, b) => a - b),
      `${kind} in order`,
    );
  }
});
