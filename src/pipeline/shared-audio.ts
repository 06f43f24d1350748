import type { MixSource } from '../audio/mixer.js';
import { isAudioHeaderTag, type FlvTag } from '../media/flv.js';
import type { PcmSource, Pipeline, PipelineFactory, PipelineSpec, TagSource } from './pipeline.js';
import type { AudioPacket } from '../publishers/fanout.js';
import type { FailureKind } from '../outputs/failures.js';

/**
 * One AAC encoder per stream and audio variant. Pushes of a stream that hear the same audio (the
 * publisher's Opus relayed as it is: not muted, no sound playing, no still picture, video passed
 * through) and ask the same bitrate share one pipeline, so a second destination costs no second
 * ffmpeg. Each push holds a lease on it, a `Pipeline` of its own: its own place on the timeline,
 * the AAC sequence header given again when it joins, and its own audio commands. A push that mutes
 * while others share its encoder gets a pipeline of its own (the feed switches to it before the
 * shared one is left, so its destination hears no break); one alone on it takes it over in place.
 * The pipeline ends with its last lease, and its loss is every lease's.
 */
export class SharedAudio {
  /** The encoders open now, by stream (the publisher object) and variant. */
  readonly #encoders = new WeakMap<object, Map<string, SharedEncoder>>();

  /** `make`'s pipelines, shared wherever a spec allows it. */
  pipelines(make: PipelineFactory): PipelineFactory {
    return (spec) => {
      const variant = shareableVariant(spec);
      if (variant === undefined || spec.stream === undefined) return make(spec);
      const stream = spec.stream;
      let byVariant = this.#encoders.get(stream);
      if (!byVariant) this.#encoders.set(stream, (byVariant = new Map<string, SharedEncoder>()));
      let encoder = byVariant.get(variant);
      if (!encoder) {
        const created: SharedEncoder = new SharedEncoder(make(spec), () => {
          if (byVariant.get(variant) === created) byVariant.delete(variant);
        });
        encoder = created;
        byVariant.set(variant, encoder);
      }
      return encoder.lease();
    };
  }
}

/** What a spec's pipeline encodes, when it can be shared: pipelines of one stream with the same variant are the same. */
function shareableVariant(spec: PipelineSpec): string | undefined {
  if (!spec.opus || spec.muted || spec.sound !== undefined || spec.still !== undefined || spec.video !== undefined) return undefined;
  return `aac:${spec.plan.audioBitrateKbps ?? 'default'}`;
}

/** One pipeline and the leases on it. */
class SharedEncoder {
  readonly #leases = new Set<AudioLease>();
  #pipe: Pipeline | undefined;
  /** The AAC sequence header, given to each lease before its first frame. */
  #header: FlvTag | undefined;
  /** The last packet written: every push of the stream is given the same packet, and it is written once. */
  #lastPayload: Buffer | undefined;
  /** No lease joins any more: the last one left, the pipeline was lost, or it became one lease's own. */
  #closed = false;

  constructor(
    private readonly starting: Promise<Pipeline>,
    private readonly onClosed: () => void,
  ) {
    starting.then(
      (pipe) => {
        this.#pipe = pipe;
        if (this.#closed && this.#leases.size === 0) return void pipe.close();
        pipe.onTags((tags) => this.#onTags(tags));
        pipe.onLost((reason, kind) => {
          this.#retire();
          for (const lease of [...this.#leases]) lease.lost(reason, kind);
        });
      },
      () => this.#retire(),
    );
  }

  async lease(): Promise<Pipeline> {
    const lease = new AudioLease(this);
    this.#leases.add(lease);
    try {
      lease.pipe = await this.starting;
    } catch (error) {
      this.#leases.delete(lease);
      throw error;
    }
    if (!this.#leases.has(lease)) throw new Error('the shared audio encoder was closed');
    return lease;
  }

  get header(): FlvTag | undefined {
    return this.#header;
  }

  writeAudio(packet: AudioPacket, pcm: PcmSource): void {
    if (packet.payload === this.#lastPayload) return;
    this.#lastPayload = packet.payload;
    this.#pipe?.writeAudio(packet, pcm);
  }

  /** Makes the pipeline `lease`'s alone if no other push shares it: true when it did. */
  makeOwn(lease: AudioLease): boolean {
    if (this.#leases.size !== 1 || !this.#leases.has(lease)) return false;
    this.#retire();
    return true;
  }

  release(lease: AudioLease): Promise<void> {
    if (!this.#leases.delete(lease) || this.#leases.size > 0) return Promise.resolve();
    this.#retire();
    return this.#pipe?.close() ?? Promise.resolve();
  }

  #onTags(tags: FlvTag[]): void {
    this.#header ??= tags.find(isAudioHeaderTag);
    for (const lease of this.#leases) lease.deliver(tags);
  }

  /** No more leases join. */
  #retire(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClosed();
  }
}

/** One push's hold on a shared encoder. */
class AudioLease implements Pipeline {
  readonly source: TagSource = { shiftMs: 0, still: false, transcoding: false };
  readonly mixes = false;
  pipe!: Pipeline;
  #tags: ((tags: FlvTag[]) => void) | undefined;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;
  /** The encoder was lost before this lease had a listener: told to the one set next. */
  #lostBeforeListening: [reason: string, kind: FailureKind] | undefined;
  /** The sequence header is owed before the next tags (each listener starts with it). */
  #owesHeader = true;
  /** The pipeline is this push's alone: audio commands go to it. */
  #own = false;
  #closing: Promise<void> | undefined;

  constructor(private readonly encoder: SharedEncoder) {}

  get output(): Promise<void> {
    return this.pipe.output;
  }

  get behindSince(): number | undefined {
    return this.pipe.behindSince;
  }

  get audioDiscardedMs(): number {
    return this.pipe.audioDiscardedMs;
  }

  begin(captureMs: number): void {
    this.pipe.begin(captureMs);
    this.source.audioStartMs = this.pipe.source.audioStartMs;
  }

  writeAudio(packet: AudioPacket, pcm: PcmSource): void {
    if (this.#own) this.pipe.writeAudio(packet, pcm);
    else this.encoder.writeAudio(packet, pcm);
  }

  writeVideo(): void {}

  setMuted(muted: boolean): boolean {
    if (!this.#own) {
      if (!muted) return true;
      if (!this.encoder.makeOwn(this)) return false;
      this.#own = true;
    }
    return this.pipe.setMuted(muted);
  }

  setSound(sound: MixSource | undefined): boolean {
    return this.pipe.setSound(sound);
  }

  onTags(listener: (tags: FlvTag[]) => void): void {
    this.#tags = listener;
    this.#owesHeader = true;
  }

  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
    const early = this.#lostBeforeListening;
    this.#lostBeforeListening = undefined;
    if (early) queueMicrotask(() => this.lost(...early));
  }

  /** Tags of the shared pipeline; a listener that joined after the sequence header gets it first, at the time of what follows. */
  deliver(tags: FlvTag[]): void {
    const listener = this.#tags;
    if (!listener || tags.length === 0) return;
    this.source.audioStartMs ??= this.pipe.source.audioStartMs;
    if (this.#owesHeader) {
      this.#owesHeader = false;
      const header = this.encoder.header;
      if (header && !tags.some(isAudioHeaderTag)) tags = [{ ...header, timestamp: tags[0]!.timestamp }, ...tags];
    }
    listener(tags);
  }

  lost(reason: string, kind: FailureKind): void {
    const listener = this.#lost;
    this.#lost = undefined;
    if (!listener && !this.#closing) this.#lostBeforeListening = [reason, kind];
    listener?.(reason, kind);
  }

  close(): Promise<void> {
    this.#closing ??= (() => {
      this.#tags = undefined;
      this.#lost = undefined;
      return this.encoder.release(this);
    })();
    return this.#closing;
  }
}
