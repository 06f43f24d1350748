import t from 'tap';
import { FlvTagType, type FlvTag } from '../../src/media/flv.js';
import type { EncodingPlan } from '../../src/pipeline/encoding.js';
import type { Pipeline, PipelineSpec } from '../../src/pipeline/pipeline.js';
import { SharedEncoders, shareableVariant } from '../../src/pipeline/shared-encoders.js';
import type { FailureKind } from '../../src/links/failures.js';
import type { AudioPacket, VideoFrame } from '../../src/media/sinks.js';

// The leases on one shared encoder, over a fake pipeline: what each push is given, and when the
// encoder is shared, made a push's own, or ended.

class FakePipeline implements Pipeline {
  readonly output = Promise.resolve();
  readonly source = {
    shiftMs: 0,
    still: false,
    transcoding: false,
    audioStartMs: undefined as number | undefined,
    videoStartMs: undefined as number | undefined,
  };
  mixes = false;
  written: Buffer[] = [];
  frames: VideoFrame[] = [];
  muted = false;
  closed = false;
  behindSince: number | undefined;
  audioDiscardedMs = 0;
  #tags: ((tags: FlvTag[]) => void) | undefined;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;
  begin(ms: number): void {
    this.source.audioStartMs ??= ms;
  }
  writeAudio(packet: AudioPacket): void {
    this.written.push(packet.payload);
  }
  writeVideo(frame: VideoFrame): void {
    this.frames.push(frame);
  }
  setMuted(muted: boolean): boolean {
    this.muted = muted;
    return true;
  }
  setSound(sound: unknown): boolean {
    return sound === undefined;
  }
  onTags(listener: (tags: FlvTag[]) => void): void {
    this.#tags = listener;
  }
  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
  }
  emit(tags: FlvTag[]): void {
    this.#tags?.(tags);
  }
  lose(): void {
    this.#lost?.('ffmpeg exited', 'local');
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const stream = {};
const spec = (over: Partial<PipelineSpec> = {}): PipelineSpec => ({
  plan: { video: 'copy' },
  muted: false,
  sound: undefined,
  opus: true,
  stream,
  ...over,
});
const header: FlvTag = { type: FlvTagType.AUDIO, timestamp: 0, body: Buffer.from([0xaf, 0, 0x11, 0x90]) };
const frame = (timestamp: number): FlvTag => ({
  type: FlvTagType.AUDIO,
  timestamp,
  body: Buffer.from([0xaf, 1, timestamp & 0xff]),
});
let captured = 0;
const packet = (payload: Buffer, captureMs = ++captured): AudioPacket => ({ payload, captureMs });
const noPcm = { audioPcm: () => undefined };

function setup() {
  const made: FakePipeline[] = [];
  const pipelines = new SharedEncoders().pipelines(async () => {
    const pipe = new FakePipeline();
    made.push(pipe);
    return pipe;
  });
  return { made, pipelines };
}

t.test(
  'pushes of a stream share one pipeline; each is given the sequence header first, timed as what follows',
  async (t) => {
    const { made, pipelines } = setup();
    const a = await pipelines(spec());
    const seenA: FlvTag[] = [];
    a.onTags((tags) => seenA.push(...tags));
    made[0]!.emit([header, frame(21)]);
    const b = await pipelines(spec());
    t.equal(made.length, 1, 'one pipeline for both');
    const seenB: FlvTag[] = [];
    b.onTags((tags) => seenB.push(...tags));
    made[0]!.emit([frame(43), frame(64)]);
    t.same(
      seenA.map((tag) => tag.timestamp),
      [0, 21, 43, 64],
    );
    t.same(
      seenB.map((tag) => [tag.body[1], tag.timestamp]),
      [
        [0, 43],
        [1, 43],
        [1, 64],
      ],
      'b: the header at the time of its first frame',
    );
    // Every push hands the encoder the same packet: it is written once; one from before it (a late push) is not.
    const same = packet(Buffer.from([1, 2, 3]));
    a.writeAudio(same, noPcm);
    b.writeAudio(same, noPcm);
    b.writeAudio(packet(Buffer.from([4]), same.captureMs - 20), noPcm);
    t.equal(made[0]!.written.length, 1);
    t.not(
      await pipelines(spec({ plan: { video: 'copy', audioBitrateKbps: 64 } })),
      a,
      'another bitrate, another pipeline',
    );
    t.equal(made.length, 2);
    await pipelines(spec({ muted: true }));
    await pipelines(spec({ stream: {} }));
    t.equal(made.length, 4, 'a muted spec and another stream get pipelines of their own');
  },
);

t.test('a mute: refused while shared, taken in place by a push alone, which no push joins after', async (t) => {
  const { made, pipelines } = setup();
  const a = await pipelines(spec());
  const b = await pipelines(spec());
  t.equal(a.setMuted(true), false, 'shared: the push must switch to a pipeline of its own');
  t.equal(made[0]!.muted, false, 'the others are not muted');
  t.equal(a.setMuted(false), true);
  await b.close();
  t.equal(made[0]!.closed, false, 'a is still on it');
  t.equal(a.setMuted(true), true, 'alone: muted in place');
  t.equal(made[0]!.muted, true);
  await pipelines(spec());
  t.equal(made.length, 2, 'a new push does not join a muted encoder');
  await a.close();
  t.equal(made[0]!.closed, true, 'the pipeline ends with its last push');
});

t.test("the pipeline lost is every lease's loss, told also to a listener set after it", async (t) => {
  const { made, pipelines } = setup();
  const a = await pipelines(spec());
  const b = await pipelines(spec());
  const told: string[] = [];
  a.onLost((reason) => told.push(`a: ${reason}`));
  made[0]!.lose();
  b.onLost((reason) => told.push(`b: ${reason}`));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(told, ['a: ffmpeg exited', 'b: ffmpeg exited']);
  await pipelines(spec());
  t.equal(made.length, 2, 'the next push gets a new pipeline');
});

// A transcoded rendition: the same plan for the same stream is one encoder; a push joins at a keyframe.
const rendition: EncodingPlan = {
  video: 'transcode',
  reason: 'height 360 requested',
  scale: { width: -2, height: 360 },
};
const renditionSpec = (over: Partial<PipelineSpec> = {}): PipelineSpec => ({
  plan: rendition,
  video: 'H264',
  muted: false,
  sound: undefined,
  stream,
  ...over,
});
const script: FlvTag = { type: FlvTagType.SCRIPT, timestamp: 0, body: Buffer.from([2, 0, 10]) };
const avcHeader: FlvTag = { type: FlvTagType.VIDEO, timestamp: 0, body: Buffer.from([0x17, 0, 0, 0, 0, 1]) };
const picture = (timestamp: number, key = false): FlvTag => ({
  type: FlvTagType.VIDEO,
  timestamp,
  body: Buffer.from([key ? 0x17 : 0x27, 1, 0, 0, 0, timestamp & 0xff]),
});
const describe = (tags: FlvTag[]): string[] =>
  tags.map((tag) => {
    if (tag.type === FlvTagType.SCRIPT) return `meta@${tag.timestamp}`;
    const what =
      tag.type === FlvTagType.AUDIO
        ? tag.body[1] === 0
          ? 'aac-header'
          : 'audio'
        : tag.body[1] === 0
          ? 'avc-header'
          : tag.body[0] === 0x17
            ? 'key'
            : 'frame';
    return `${what}@${tag.timestamp}`;
  });
const videoFrame = (captureMs: number, key = false, size = { width: 640, height: 360 }): VideoFrame =>
  ({ captureMs, key, size }) as unknown as VideoFrame;
const microtasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test(
  'pushes of one rendition share one encoder; a push joining starts at a keyframe, with the headers at its time',
  async (t) => {
    const { made, pipelines } = setup();
    const a = await pipelines(renditionSpec({ canStartAt: () => true }));
    const seenA: FlvTag[] = [];
    a.onTags((tags) => seenA.push(...tags));
    const encoder = made[0]!;
    encoder.source.videoStartMs = 1000;
    encoder.emit([script, avcHeader, picture(0, true), picture(33)]);
    encoder.emit([header, frame(21)]);
    t.same(
      describe(seenA),
      ['meta@0', 'avc-header@0', 'key@0', 'frame@33', 'aac-header@0', 'audio@21'],
      'the first push: all of it',
    );

    // One that cannot start at the cached keyframe (its output went past it) waits for the next.
    const b = await pipelines(renditionSpec({ canStartAt: () => false }));
    const seenB: FlvTag[] = [];
    b.onTags((tags) => seenB.push(...tags));
    await microtasks();
    encoder.emit([picture(66)]);
    encoder.emit([frame(43)]);
    t.same(seenB, [], 'nothing before a keyframe, not even audio');
    encoder.emit([picture(100, true)]);
    encoder.emit([frame(107)]);
    t.same(
      describe(seenB),
      ['meta@100', 'avc-header@100', 'key@100', 'aac-header@107', 'audio@107'],
      'b: from the next keyframe, headers at its time',
    );

    // One whose output can start there is given the cached keyframe and what followed at once.
    let askedAt: number | undefined;
    const c = await pipelines(
      renditionSpec({
        canStartAt: (captureMs) => {
          askedAt = captureMs;
          return true;
        },
      }),
    );
    const seenC: FlvTag[] = [];
    c.onTags((tags) => seenC.push(...tags));
    await microtasks();
    t.equal(askedAt, 1100, 'asked about the keyframe at its publisher-clock time');
    t.same(
      describe(seenC),
      ['meta@100', 'avc-header@100', 'key@100', 'aac-header@107', 'audio@107'],
      'c: at once, from the cached keyframe',
    );
    t.equal(made.length, 1, 'one encoder for the three');
    t.equal(c.source.videoStartMs, 1000, "the lease's tags are timed as the encoder's");

    // The same frame from every push goes in once; one from before it does not.
    a.writeVideo(videoFrame(2000, true));
    b.writeVideo(videoFrame(2000, true));
    c.writeVideo(videoFrame(1990));
    t.equal(encoder.frames.length, 1);

    t.not(
      await pipelines(renditionSpec({ plan: { ...rendition, fps: 15 } })),
      a,
      'another frame rate, another encoder',
    );
    await pipelines(renditionSpec({ plan: { ...rendition, reason: 'other words' } }));
    t.equal(made.length, 2, 'the plan decides, not the words about it');
    await pipelines(renditionSpec({ stream: {} }));
    await pipelines(renditionSpec({ sound: {} as never }));
    t.equal(made.length, 4, 'another stream, or a sound playing, get encoders of their own');
  },
);

t.test(
  'a rendition that follows the source takes no new push once the source outgrew it; one of a fixed size does',
  async (t) => {
    const { made, pipelines } = setup();
    const follows = renditionSpec({ plan: { video: 'transcode', reason: 'fps 15 requested', fps: 15 } });
    const a = await pipelines(follows);
    a.writeVideo(videoFrame(1, true));
    a.writeVideo(videoFrame(2, true, { width: 320, height: 180 }));
    await pipelines(follows);
    t.equal(made.length, 1, 'a smaller source is scaled up by the same encoder');
    a.writeVideo(videoFrame(3, true, { width: 1280, height: 720 }));
    await pipelines(follows);
    t.equal(made.length, 2, 'grown: the next push (each push switching to the new size) gets a new encoder');
    const fixed = await pipelines(renditionSpec());
    fixed.writeVideo(videoFrame(4, true));
    fixed.writeVideo(videoFrame(5, true, { width: 1280, height: 720 }));
    await pipelines(renditionSpec());
    t.equal(made.length, 3, 'a fixed size is shared whatever the source');
  },
);

t.test(
  'a sound or a mute on a shared rendition needs a pipeline of its own; alone, it is taken in place',
  async (t) => {
    const { made, pipelines } = setup();
    const a = await pipelines(renditionSpec());
    const b = await pipelines(renditionSpec());
    (made[0] as { mixes: boolean }).mixes = true;
    t.equal(a.setSound({} as never), false, 'shared: refused');
    t.equal(a.setSound(undefined), true, 'no sound is no change');
    t.equal(a.setMuted(true), false);
    await b.close();
    t.equal(a.setMuted(true), true, 'alone: in place');
    t.equal(made[0]!.muted, true);
    t.equal(a.mixes, true, 'its own now: it mixes');
  },
);

t.test(
  'a new push joining an AAC encoder is given its sound kept (11 s) once its first picture went out',
  async (t) => {
    const { made, pipelines } = setup();
    const a = await pipelines(spec());
    a.onTags(() => {});
    made[0]!.begin(1000);
    const sound = Array.from({ length: 600 }, (_, i) => frame(i * 20));
    made[0]!.emit([header, ...sound]);
    const join = async (over: Partial<PipelineSpec>): Promise<FlvTag[]> => {
      const seen: FlvTag[] = [];
      (await pipelines(spec(over))).onTags((tags) => seen.push(...tags));
      return seen;
    };
    let pictureOut = false;
    const fresh = await join({ pictureStarted: () => pictureOut });
    const other = await join({});
    const times = (tags: FlvTag[]): number[] => tags.map((tag) => tag.timestamp);
    made[0]!.emit([frame(12000)]);
    t.same(times(fresh), [12000, 12000], 'before its first picture went out: live sound only, the header first');
    pictureOut = true;
    made[0]!.emit([frame(12020), frame(12040)]);
    t.equal(made.length, 1, 'all on the one encoder');
    const kept = sound.filter((tag) => tag.timestamp >= 1040).map((tag) => tag.timestamp);
    t.same(
      times(fresh),
      [12000, 12000, ...kept, 12000, 12020, 12040],
      'then the sound kept, the last 11 s, before the live (its timeline leaves out what it sent, and what is before its first picture)',
    );
    t.same(times(other), [12000, 12000, 12020, 12040], 'a push that is not new: live sound only');
    made[0]!.emit([frame(12060)]);
    t.same(times(fresh).slice(-2), [12040, 12060], 'given once');
  },
);

t.test('variants: what each spec shares', async (t) => {
  t.equal(shareableVariant(spec()), 'aac:default');
  t.equal(shareableVariant(spec({ opus: false })), undefined, 'PCM with video passed through: mixed for this push');
  t.equal(
    shareableVariant(
      renditionSpec({ still: { picture: { header: Buffer.alloc(0), frame: Buffer.alloc(0) }, fps: 30 } }),
    ),
    undefined,
  );
  t.equal(shareableVariant(renditionSpec({ muted: true })), undefined);
  t.match(shareableVariant(renditionSpec({ video: 'VP8' })), /^VP8:/, 'the source codec is part of it');
});
