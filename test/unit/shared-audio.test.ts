import t from 'tap';
import { FlvTagType, type FlvTag } from '../../src/media/flv.js';
import type { AudioPacket } from '../../src/publishers/fanout.js';
import type { Pipeline, PipelineSpec } from '../../src/pipeline/pipeline.js';
import { SharedAudio } from '../../src/pipeline/shared-audio.js';
import type { FailureKind } from '../../src/outputs/failures.js';

// The leases on one shared encoder, over a fake pipeline: what each push is given, and when the
// encoder is shared, made a push's own, or ended.

class FakePipeline implements Pipeline {
  readonly output = Promise.resolve();
  readonly source = { shiftMs: 0, still: false, transcoding: false, audioStartMs: undefined as number | undefined };
  readonly mixes = false;
  written: Buffer[] = [];
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
  writeVideo(): void {}
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
const spec = (over: Partial<PipelineSpec> = {}): PipelineSpec => ({ plan: { video: 'copy' }, muted: false, sound: undefined, opus: true, stream, ...over });
const header: FlvTag = { type: FlvTagType.AUDIO, timestamp: 0, body: Buffer.from([0xaf, 0, 0x11, 0x90]) };
const frame = (timestamp: number): FlvTag => ({ type: FlvTagType.AUDIO, timestamp, body: Buffer.from([0xaf, 1, timestamp & 0xff]) });
const packet = (payload: Buffer): AudioPacket => ({ payload, captureMs: 0 });
const noPcm = { audioPcm: () => undefined };

function setup() {
  const made: FakePipeline[] = [];
  const pipelines = new SharedAudio().pipelines(async () => {
    const pipe = new FakePipeline();
    made.push(pipe);
    return pipe;
  });
  return { made, pipelines };
}

t.test('pushes of a stream share one pipeline; each is given the sequence header first, timed as what follows', async (t) => {
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
  // Every push hands the encoder the same packet: it is written once.
  const payload = Buffer.from([1, 2, 3]);
  a.writeAudio(packet(payload), noPcm);
  b.writeAudio(packet(payload), noPcm);
  t.equal(made[0]!.written.length, 1);
  t.not(await pipelines(spec({ plan: { video: 'copy', audioBitrateKbps: 64 } })), a, 'another bitrate, another pipeline');
  t.equal(made.length, 2);
  await pipelines(spec({ muted: true }));
  await pipelines(spec({ stream: {} }));
  t.equal(made.length, 4, 'a muted spec and another stream get pipelines of their own');
});

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
