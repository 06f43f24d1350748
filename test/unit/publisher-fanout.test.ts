import t from 'tap';
import pino from 'pino';
import { TypedEmitter } from '../../src/core/events.js';
import type { IngestSession, IngestSessionEvents, IngestTrack } from '../../src/ingest/engine.js';
import { Publisher } from '../../src/publishers/publisher.js';
import { cachedPublisher, FakeCamera, FakeTrack, fakePublisher, nal, PPS, SPS_720P } from '../helpers/fake-ingest.js';
import type { AudioPacket, MediaSink, RtpSink, VideoFrame } from '../../src/media/sinks.js';

// One publisher's audio packets and video frames reach every sink; a sink that throws is logged
// once and hurts no other.

class AudioTrack implements IngestTrack {
  readonly kind = 'audio' as const;
  readonly clockRate = 48000;
  input: RtpSink | undefined;
  deliverTo(input: RtpSink): () => void {
    this.input = input;
    return () => (this.input = undefined);
  }
  requestKeyframe(): void {}
}

class FakeSession extends TypedEmitter<IngestSessionEvents> implements IngestSession {
  readonly id = 'fake';
  readonly answer = '';
  readonly videoCodec = undefined;
  readonly hasAudio = true;
  constructor(readonly tracks: IngestTrack[]) {
    super();
  }
  async close(): Promise<void> {}
}

class CountingSink implements MediaSink {
  readonly times: number[] = [];
  frames = 0;
  constructor(private readonly throws = false) {}
  audio(packet: AudioPacket): void {
    if (this.throws) throw new Error('broken sink');
    this.times.push(Math.round(packet.captureMs));
  }
  frame(): void {
    this.frames++;
  }
}

t.test('a throwing sink does not stop the others, and is logged once', async (t) => {
  const track = new AudioTrack();
  const logged: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  const publisher = new Publisher('cam', new FakeSession([track]), {
    keyframeIntervalMs: 2000,
    firstPacketsSettleMs: 0,
    log,
  });
  t.teardown(() => publisher.close());
  const before = new CountingSink();
  const broken = new CountingSink(true);
  const after = new CountingSink();
  for (const sink of [before, broken, after]) publisher.attach(sink, false);
  for (let i = 0; i < 50; i++)
    track.input!.packet({
      sequenceNumber: i,
      timestamp: i * 960,
      marker: false,
      payload: Buffer.from([1, 2, 3]),
      captureMs: 0,
    });
  t.equal(before.times.length, 50, 'the sink before the broken one got every packet');
  t.same(after.times, before.times, 'the sink after the broken one got every packet');
  t.same(
    before.times.map((ms) => ms - before.times[0]!),
    Array.from({ length: 50 }, (_, i) => i * 20),
    'timed on the publisher clock',
  );
  t.equal(publisher.counters.sinkErrors, 50, 'every failure is counted');
  t.equal(logged.filter((l) => /a media sink threw/.test(l)).length, 1, 'and logged once');
});

class FrameSink implements MediaSink {
  readonly frames: VideoFrame[] = [];
  audioPackets = 0;
  constructor(private readonly throws = false) {}
  audio(): void {
    this.audioPackets++;
  }
  frame(frame: VideoFrame): void {
    if (this.throws) throw new Error('broken sink');
    this.frames.push(frame);
  }
}

t.test('video is depacketized once: every sink gets the same frames, one throwing sink hurts no other', async (t) => {
  const track = new FakeTrack('video');
  const publisher = fakePublisher('cam', [track]);
  t.teardown(() => publisher.close());
  const camera = new FakeCamera(track);
  const sinks = [new FrameSink(), new FrameSink(true), new FrameSink()];
  for (const sink of sinks) publisher.attach(sink, false);
  camera.frame(true);
  for (let i = 0; i < 9; i++) camera.frame();
  const [first, , last] = sinks;
  t.equal(first!.frames.length, 10, 'the first sink got every frame');
  t.equal(last!.frames.length, 10, 'the sink after the broken one got every frame');
  t.ok(
    first!.frames.every((frame, i) => frame === last!.frames[i]),
    'the very same frame objects: made once',
  );
  t.equal(first!.frames[3]!.flv, last!.frames[3]!.flv, 'and their FLV bodies made once');
  t.ok(
    first!.frames[0]!.key && first!.frames[0]!.sps && first!.frames[0]!.pps,
    'the first is a keyframe with its parameter sets',
  );
  t.same(
    first!.frames.map((f) => Math.round(f.captureMs - first!.frames[0]!.captureMs)),
    Array.from({ length: 10 }, (_, i) => Math.round((i * 3000) / 90)),
    'timed on the publisher clock',
  );
  t.ok(first!.frames[0]!.packets > 1, 'each frame tells the packets it came in');
  t.equal(
    first!.frames.reduce((n, f) => n + f.packets, 0),
    track.packetsSent,
    'no video packet is handed to a sink as such',
  );
  t.equal(publisher.counters.sinkErrors, 10, 'every failure is counted');
});

t.test('a sink attached later starts from the cached keyframe, with the frames since', async (t) => {
  const { publisher, camera } = cachedPublisher(t);
  const late = new FrameSink();
  t.ok(publisher.attach(late, true), 'started from the keyframe');
  t.same(
    late.frames.map((f) => f.key),
    [true, false, false],
    'the keyframe and the two frames after it, at once',
  );
  camera.frame();
  t.equal(late.frames.length, 4, 'then live frames');
});

t.test('after a lost packet, frames resume at the next keyframe and one is asked for', async (t) => {
  const track = new FakeTrack('video');
  const publisher = fakePublisher('cam', [track]);
  t.teardown(() => publisher.close());
  const sink = new FrameSink();
  publisher.attach(sink, false);
  track.sendFrame([SPS_720P, PPS, nal(5, 3000)], 0);
  track.sendFrame([nal(1, 800)], 3000);
  const requests = track.keyframeRequests;
  // A frame of three fragments whose middle one never arrives; the next frames come 200 ms later.
  const fragments = nal(1, 3000);
  track.send(Buffer.concat([Buffer.from([0x7c, 0x81]), fragments.subarray(1, 1000)]), 6000, false, 10);
  track.send(Buffer.concat([Buffer.from([0x7c, 0x41]), fragments.subarray(2000)]), 6000, true, 12);
  await new Promise((resolve) => setTimeout(resolve, 150));
  track.sendFrame([nal(1, 800)], 9000);
  t.equal(publisher.framesLost, 1, 'the broken frame counts as lost');
  t.ok(track.keyframeRequests > requests, 'a keyframe is asked for');
  t.equal(sink.frames.length, 2, 'nothing is given until a keyframe');
  track.sendFrame([SPS_720P, PPS, nal(5, 3000)], 12000);
  t.equal(sink.frames.at(-1)!.key, true, 'the keyframe goes out');
  t.equal(sink.frames.length, 3);
});

t.test(
  'a push waiting for a keyframe to start from is told when one comes, and given up on after its timeout',
  async (t) => {
    const track = new FakeTrack('video');
    const publisher = fakePublisher('cam', [track]);
    t.teardown(() => publisher.close());
    const camera = new FakeCamera(track);
    const refused = await publisher.keyframeCached(20).then(
      () => undefined,
      (error: Error) => error,
    );
    t.match(refused?.message, /no keyframe arrived/, 'none came in time');
    const waiting = publisher.keyframeCached(60_000);
    camera.frame();
    t.notOk(publisher.hasKeyframe, 'an inter frame is nothing to start from');
    camera.frame(true);
    await waiting;
    t.ok(publisher.hasKeyframe, 'resolved by the keyframe');
    await publisher.keyframeCached(0);
    t.pass('and at once while one is cached');
  },
);
