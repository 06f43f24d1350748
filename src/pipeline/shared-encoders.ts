import type { SoundSource } from '../audio/pcm-timeline.js';
import {
  FlvTagType,
  isAudioFrameTag,
  isAudioHeaderTag,
  isKeyframeTag,
  isVideoFrameTag,
  type FlvTag,
} from '../media/flv.js';
import type { PcmSource, Pipeline, PipelineFactory, PipelineSpec, TagSource } from './pipeline.js';
import type { FailureKind } from '../links/failures.js';
import type { AudioPacket, VideoFrame } from '../media/sinks.js';

/** Tags of a shared rendition kept since its last keyframe (about 6 s at 30 fps with its audio); a longer GOP is not kept. */
const MAX_CACHED_TAGS = 500;
/**
 * The sound an AAC encoder keeps (ms): a push joining it starts at a keyframe the publisher sent
 * before, and is given its sound from there. The publisher's start cache holds up to 300 frames
 * (10 s at 30 fps); a second more for the time its first picture takes to go out.
 */
const KEPT_AUDIO_MS = 11_000;

/**
 * One encoder per stream and variant. Pushes of a stream that would make the same output share one
 * pipeline, so a second destination costs no second ffmpeg:
 * - an AAC variant: the publisher's Opus passed as it is (video passed through), the same bitrate;
 * - a rendition: video transcoded with the same plan (size or shape, frame rate, keyframe interval,
 *   bitrate, overlays) and its audio with the same bitrate.
 * Neither may be muted or carry a sound, or show the still picture. Each push holds a lease on it,
 * a `Pipeline` of its own: its own place on the timeline, the sequence headers given again when it
 * joins, and its own audio commands. A push that mutes (or plays a sound) while others share its
 * encoder gets a pipeline of its own (the feed switches to it before the shared one is left, so its
 * destination hears no break); one alone on it takes it over in place. The pipeline ends with its
 * last lease, and its loss is every lease's.
 */
export class SharedEncoders {
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
        const created: SharedEncoder = new SharedEncoder(make(spec), spec, () => {
          if (byVariant.get(variant) === created) byVariant.delete(variant);
        });
        encoder = created;
        byVariant.set(variant, encoder);
      }
      return encoder.lease(spec);
    };
  }
}

/** What a spec's pipeline makes, when pushes can share it: pipelines of one stream with the same variant are the same. */
export function shareableVariant(spec: PipelineSpec): string | undefined {
  if (spec.muted || spec.sound !== undefined || spec.still !== undefined) return undefined;
  if (spec.video === undefined) return spec.opus ? `aac:${spec.plan.audioBitrateKbps ?? 'default'}` : undefined;
  if (spec.plan.video !== 'transcode') return undefined;
  // The reason is words about the rest.
  const { reason: _reason, ...rendition } = spec.plan;
  return `${spec.video}:${JSON.stringify(rendition)}`;
}

type Size = { width: number; height: number };

/** One pipeline and the leases on it. */
class SharedEncoder {
  readonly #leases = new Set<EncoderLease>();
  #pipe: Pipeline | undefined;
  /** It transcodes video: a push joining it starts at a keyframe. */
  readonly video: boolean;
  /** Its picture follows the source's size (no size or shape asked): a source grown past it needs another. */
  readonly #followsSource: boolean;
  #startSize: Size | undefined;
  /** What each lease is given before its first frames: the video's onMetaData and sequence header, the AAC sequence header. */
  #script: FlvTag | undefined;
  #videoHeader: FlvTag | undefined;
  #audioHeader: FlvTag | undefined;
  /** The tags since its last keyframe: a push that can start there is given them at once. */
  #gop: FlvTag[] = [];
  /** An AAC encoder's sound frames of the last KEPT_AUDIO_MS, oldest first. */
  readonly #recentAudio: FlvTag[] = [];
  /** A video frame went out: a push joining after it starts at a keyframe, one before it with everything. */
  #framesOut = false;
  /**
   * The publisher-clock time of the last packet and frame written: every push of the stream hands
   * the encoder the same media, and it is written once, by whichever lease hands it first; a late
   * one (a start cache's replay to a joiner, a push whose queue is behind) is dropped.
   */
  #audioMs = -Infinity;
  #videoMs = -Infinity;
  /** No lease joins any more: the last one left, the pipeline was lost, it became one lease's own, or the source outgrew it. */
  #closed = false;

  constructor(
    private readonly starting: Promise<Pipeline>,
    spec: PipelineSpec,
    private readonly onClosed: () => void,
  ) {
    this.video = spec.video !== undefined;
    this.#followsSource = this.video && spec.plan.video === 'transcode' && !spec.plan.scale && !spec.plan.shape;
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

  async lease(spec: PipelineSpec): Promise<Pipeline> {
    const lease = new EncoderLease(this, spec);
    this.#leases.add(lease);
    try {
      lease.pipe = await this.starting;
    } catch (error) {
      this.#leases.delete(lease);
      throw error;
    }
    if (!this.#leases.has(lease)) throw new Error('the shared encoder was closed');
    return lease;
  }

  get audioHeader(): FlvTag | undefined {
    return this.#audioHeader;
  }

  get framesOut(): boolean {
    return this.#framesOut;
  }

  /** The cached tags from the last keyframe on. */
  get gop(): readonly FlvTag[] {
    return this.#gop;
  }

  /** An AAC encoder's recent sound frames, oldest first: what a push joining may have missed. */
  get recentAudio(): readonly FlvTag[] {
    return this.#recentAudio;
  }

  /** What a lease is given before its first keyframe, at its time. */
  videoHeaders(timestamp: number): FlvTag[] {
    return [this.#script, this.#videoHeader].filter((tag) => tag !== undefined).map((tag) => ({ ...tag, timestamp }));
  }

  writeAudio(packet: AudioPacket, pcm: PcmSource): void {
    if (packet.captureMs <= this.#audioMs) return;
    this.#audioMs = packet.captureMs;
    this.#pipe?.writeAudio(packet, pcm);
  }

  writeVideo(frame: VideoFrame): void {
    if (frame.captureMs <= this.#videoMs) return;
    this.#videoMs = frame.captureMs;
    if (this.#followsSource && frame.key && frame.size) {
      const start = (this.#startSize ??= frame.size);
      // Each push's feed starts a pipeline at the new size: they share one, not this one.
      if (frame.size.width > start.width || frame.size.height > start.height) this.#retire();
    }
    this.#pipe?.writeVideo(frame);
  }

  /** Pushes taking its output. */
  get leases(): number {
    return this.#leases.size;
  }

  /** Makes the pipeline `lease`'s alone if no other push shares it: true when it did. */
  makeOwn(lease: EncoderLease): boolean {
    if (this.#leases.size !== 1 || !this.#leases.has(lease)) return false;
    this.#retire();
    return true;
  }

  release(lease: EncoderLease): Promise<void> {
    if (!this.#leases.delete(lease) || this.#leases.size > 0) return Promise.resolve();
    this.#retire();
    return this.#pipe?.close() ?? Promise.resolve();
  }

  #onTags(tags: FlvTag[]): void {
    for (const tag of tags) this.#keep(tag);
    for (const lease of this.#leases) lease.deliver(tags);
  }

  #keep(tag: FlvTag): void {
    if (tag.type === FlvTagType.SCRIPT) this.#script ??= tag;
    else if (isAudioHeaderTag(tag)) this.#audioHeader = tag;
    else if (tag.type === FlvTagType.VIDEO && !isVideoFrameTag(tag)) this.#videoHeader = tag;
    else if (!this.video) this.#keepAudio(tag);
    else if (isKeyframeTag(tag)) {
      this.#gop = [tag];
      this.#framesOut = true;
    } else if (this.#gop.length > 0 && this.#gop.length < MAX_CACHED_TAGS) this.#gop.push(tag);
    else this.#gop = [];
  }

  #keepAudio(tag: FlvTag): void {
    if (!isAudioFrameTag(tag)) return;
    const recent = this.#recentAudio;
    recent.push(tag);
    while (recent[0]!.timestamp < tag.timestamp - KEPT_AUDIO_MS) recent.shift();
  }

  /** No more leases join. */
  #retire(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClosed();
  }
}

/** One push's hold on a shared encoder. */
class EncoderLease implements Pipeline {
  readonly source: TagSource;
  pipe!: Pipeline;
  #tags: ((tags: FlvTag[]) => void) | undefined;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;
  /** The encoder was lost before this lease had a listener: told to the one set next. */
  #lostBeforeListening: [reason: string, kind: FailureKind] | undefined;
  /** Its tags have begun: at once for audio, at a keyframe for a rendition. */
  #started: boolean;
  /** The AAC sequence header is owed before the next audio frame (each listener starts with it). */
  #owesAudioHeader = true;
  /** A new push's sound from before it joined an AAC encoder is owed, once its first picture went out (`pictureStarted`). */
  #owesRecentAudio: boolean;
  /** The pipeline is this push's alone: audio commands go to it. */
  #own = false;
  #closing: Promise<void> | undefined;

  constructor(
    private readonly encoder: SharedEncoder,
    private readonly spec: PipelineSpec,
  ) {
    this.#started = !encoder.video;
    this.#owesRecentAudio = spec.pictureStarted !== undefined && !encoder.video;
    // The encoder's times, its tags' time 0; the shift is this push's own.
    const encoderSource = (): TagSource => this.pipe.source;
    this.source = {
      shiftMs: 0,
      still: false,
      transcoding: encoder.video,
      get audioStartMs() {
        return encoderSource().audioStartMs;
      },
      get videoStartMs() {
        return encoderSource().videoStartMs;
      },
    };
  }

  get output(): Promise<void> {
    return this.pipe.output;
  }

  get mixes(): boolean {
    return this.#own && this.pipe.mixes;
  }

  get behindSince(): number | undefined {
    return this.pipe.behindSince;
  }

  get audioDiscardedMs(): number {
    return this.pipe.audioDiscardedMs;
  }

  get sharedWith(): number {
    return this.#own ? 0 : this.encoder.leases - 1;
  }

  get pid(): number | undefined {
    return this.pipe.pid;
  }

  begin(captureMs: number): void {
    this.pipe.begin(captureMs);
  }

  writeAudio(packet: AudioPacket, pcm: PcmSource): void {
    if (this.#own) this.pipe.writeAudio(packet, pcm);
    else this.encoder.writeAudio(packet, pcm);
  }

  writeVideo(frame: VideoFrame): void {
    if (this.#own) this.pipe.writeVideo(frame);
    else this.encoder.writeVideo(frame);
  }

  setMuted(muted: boolean): boolean {
    return this.#command(muted, () => this.pipe.setMuted(muted));
  }

  setSound(sound: SoundSource | undefined): boolean {
    // Opus passed as it is mixes nothing in: a pipeline that mixes must take over.
    if (!this.pipe.mixes) return sound === undefined;
    return this.#command(sound !== undefined, () => this.pipe.setSound(sound));
  }

  onTags(listener: (tags: FlvTag[]) => void): void {
    this.#tags = listener;
    this.#owesAudioHeader = true;
    // Before the encoder's first frame, it is given all the encoder writes, its headers first.
    if (!this.encoder.framesOut) this.#started = true;
    // After the caller has set its other listeners: the cached keyframe may start it at once.
    if (!this.#started) queueMicrotask(() => this.#startFromCache());
  }

  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
    const early = this.#lostBeforeListening;
    this.#lostBeforeListening = undefined;
    if (early) queueMicrotask(() => this.lost(...early));
  }

  /**
   * Tags of the shared pipeline. A rendition's begin at a keyframe, with the video's onMetaData and
   * sequence header at its time; the AAC sequence header is given before the first audio frame, at
   * its time (at the encoder's start, it would become the push's time 0).
   */
  deliver(tags: readonly FlvTag[]): void {
    const listener = this.#tags;
    if (!listener || tags.length === 0) return;
    let out = tags;
    if (!this.#started) {
      const at = tags.findIndex(isKeyframeTag);
      if (at < 0) return;
      this.#started = true;
      out = [...this.encoder.videoHeaders(tags[at]!.timestamp), ...tags.slice(at)];
    }
    if (this.#owesRecentAudio && this.spec.pictureStarted?.()) out = this.#withRecentAudio(out);
    if (this.#owesAudioHeader) out = this.#withAudioHeader(out);
    listener(out as FlvTag[]);
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

  /**
   * A push that can start at the encoder's last keyframe (nothing later went out on its output: a
   * new push, most often) is given it and what followed at once, rather than waiting up to a
   * keyframe interval for the next. ffmpeg cannot be made to encode a keyframe on demand: its
   * `force_key_frames` takes either an expression of time and frame counts or the source's
   * keyframes, not both.
   */
  #startFromCache(): void {
    const gop = this.encoder.gop;
    const videoStartMs = this.pipe.source.videoStartMs;
    if (this.#started || this.#closing || gop.length === 0 || videoStartMs === undefined) return;
    if (this.spec.canStartAt?.(videoStartMs + gop[0]!.timestamp)) this.deliver(gop);
  }

  /** A command that changes what this push hears is taken in place only once the encoder is its own. */
  #command(changes: boolean, apply: () => boolean): boolean {
    if (!this.#own) {
      if (!changes) return true;
      if (!this.encoder.makeOwn(this)) return false;
      this.#own = true;
    }
    return apply();
  }

  /**
   * A new push on an AAC encoder starts its pictures at the publisher's keyframe before it joined:
   * once that went out, it is given the encoder's sound kept from before its next tags, and its
   * timeline sends what is from that keyframe on (up to a keyframe interval more of sound). What
   * was delivered before its first picture went out was left out by its timeline: it comes again.
   */
  #withRecentAudio(tags: readonly FlvTag[]): readonly FlvTag[] {
    const at = tags.findIndex(isAudioFrameTag);
    if (at < 0) return tags;
    this.#owesRecentAudio = false;
    const first = tags[at]!.timestamp;
    const missed = this.encoder.recentAudio.filter((tag) => tag.timestamp < first);
    return missed.length ? [...tags.slice(0, at), ...missed, ...tags.slice(at)] : tags;
  }

  #withAudioHeader(tags: readonly FlvTag[]): readonly FlvTag[] {
    const at = tags.findIndex((tag) => isAudioHeaderTag(tag) || isAudioFrameTag(tag));
    if (at < 0) return tags;
    this.#owesAudioHeader = false;
    const header = this.encoder.audioHeader;
    if (!header || isAudioHeaderTag(tags[at]!)) return tags;
    return [...tags.slice(0, at), { ...header, timestamp: tags[at]!.timestamp }, ...tags.slice(at)];
  }
}
