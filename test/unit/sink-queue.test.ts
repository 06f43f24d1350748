import t from 'tap';
import { SINK_QUEUE_ITEMS, SinkQueue } from '../../src/publishers/sink-queue.js';
import { cachedPublisher } from '../helpers/fake-ingest.js';
import type { AudioPacket, MediaSink, VideoFrame } from '../../src/media/sinks.js';

// Each push has a bounded queue of its own between the publisher and its work: the fan-out only
// queues, every queue is served a slice at a time in turn, and one that overflows discards up to
// the next keyframe and counts it.

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function frame(n: number, key = false): VideoFrame {
  return {
    codec: 'H264',
    timestamp: n * 3000,
    captureMs: n * 33,
    key,
    packets: 1,
    bytes: 100,
    flv: Buffer.alloc(0),
    bitstream: () => Buffer.alloc(0),
  };
}
const packet = (n: number): AudioPacket => ({ payload: Buffer.from([n & 0xff]), captureMs: n * 20 });

/** Records what it is given, in order: `f<ms>` for a frame, `a<ms>` for audio. */
class Recorder implements MediaSink {
  readonly got: string[] = [];
  constructor(private readonly fails = false) {}
  audio(p: AudioPacket): void {
    if (this.fails) throw new Error('broken push');
    this.got.push(`a${p.captureMs}`);
  }
  frame(f: VideoFrame): void {
    if (this.fails) throw new Error('broken push');
    this.got.push(`f${f.captureMs}`);
  }
}

t.test('media is delivered in order on the next turn, not while the publisher hands it over', async (t) => {
  const sink = new Recorder();
  const queue = new SinkQueue(sink, () => t.fail('no error'));
  queue.frame(frame(0, true));
  queue.audio(packet(1));
  queue.frame(frame(2));
  t.same(sink.got, [], 'nothing yet: the fan-out only queued');
  await turn();
  t.same(sink.got, ['f0', 'a20', 'f66'], 'then all of it, in the order it came');
  t.equal(queue.size, 0);
  t.equal(queue.packets, 3, 'what it delivered counted as the RTP packets it came in');
  t.equal(queue.bytes, 2 * (12 + 100) + 12 + 1, 'their bytes, RTP headers included');
});

t.test("one push's burst delays a neighbour's frame by one slice, not by the burst", async (t) => {
  const burst = new Recorder();
  const neighbour = new Recorder();
  const a = new SinkQueue(burst, () => {});
  const b = new SinkQueue(neighbour, () => {});
  // A reconnects: its start cache (a GOP of 300 frames) is replayed to it at once.
  for (let i = 0; i < 300; i++) a.frame(frame(i, i === 0));
  b.frame(frame(300));
  await turn();
  t.same(neighbour.got, ['f9900'], "B's live frame went out in the first round");
  t.ok(burst.got.length > 0 && burst.got.length <= 16, `A delivered one slice before it (${burst.got.length})`);
  t.ok(a.size > 0, 'the rest of the burst waits for the next turns');
  for (let i = 0; i < 40 && a.size > 0; i++) await turn();
  t.equal(burst.got.length, 300, 'and all of it is delivered, in order');
  t.same(burst.got.slice(0, 3), ['f0', 'f33', 'f66']);
});

t.test('a queue that overflows discards what it holds and its video up to the next keyframe, counted', async (t) => {
  const sink = new Recorder();
  const queue = new SinkQueue(sink, () => {});
  queue.frame(frame(0, true));
  for (let i = 1; i < SINK_QUEUE_ITEMS; i++) {
    if (i % 3) queue.frame(frame(i));
    else queue.audio(packet(i));
  }
  t.equal(queue.size, SINK_QUEUE_ITEMS, 'full, its push not served meanwhile');
  queue.frame(frame(2000)); // overflows
  queue.audio(packet(2001));
  queue.frame(frame(2002));
  queue.frame(frame(2003, true));
  queue.frame(frame(2004));
  const audioHeld = Math.floor((SINK_QUEUE_ITEMS - 1) / 3);
  t.same(
    queue.discarded,
    { frames: SINK_QUEUE_ITEMS - audioHeld + 2, audioPackets: audioHeld, overflows: 1 },
    'what it held, and the frames until the keyframe',
  );
  await turn();
  t.same(sink.got, ['a40020', 'f66099', 'f66132'], 'audio goes on; video resumes at the keyframe');
});

t.test('a push whose work throws is told once, and its neighbours get everything', async (t) => {
  const errors: unknown[] = [];
  const broken = new SinkQueue(new Recorder(true), (error) => errors.push(error));
  const fine = new Recorder();
  const neighbour = new SinkQueue(fine, () => t.fail('no error'));
  for (let i = 0; i < 50; i++) {
    broken.audio(packet(i));
    neighbour.audio(packet(i));
  }
  for (let i = 0; i < 10; i++) await turn();
  t.equal(errors.length, 1, 'told once');
  t.equal(fine.got.length, 50, 'the neighbour got every packet');
  t.equal(broken.size, 0, 'the broken one was drained all the same');
});

t.test('what waits is not delivered once the queue is cleared (the push detached)', async (t) => {
  const sink = new Recorder();
  const queue = new SinkQueue(sink, () => {});
  queue.frame(frame(0, true));
  queue.clear();
  await turn();
  t.same(sink.got, []);
  queue.frame(frame(1, true));
  await turn();
  t.same(sink.got, ['f33'], 'it is fed again after');
});

t.test("a push attached from the publisher's start cache gets the cache through its queue", async (t) => {
  const { publisher, camera } = cachedPublisher(t);
  const late = new Recorder();
  const queue = new SinkQueue(late, () => {});
  t.ok(publisher.attach(queue, true), 'started from the keyframe');
  t.equal(queue.size, 3, 'the keyframe and the two frames after it, queued');
  camera.frame();
  await turn();
  t.equal(late.got.length, 4, 'then delivered with the live frame after them');
});
