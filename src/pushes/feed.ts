import { monotonicMs } from '../core/clock.js';
import type { Logger } from 'pino';
import type { MediaKind } from '../media/codecs.js';
import { FourCc, isAudioFrameTag, isKeyframeTag, type FlvTag } from '../media/flv.js';
import type { Publisher } from '../publishers/publisher.js';
import type { EncodingPlan } from '../pipeline/encoding.js';
import { AudioTail, audioEndMs } from './audio-tail.js';
import { PublisherInput } from './input.js';
import { StartSizes } from './start-sizes.js';
import type { AudioCommands } from '../pipeline/audio-commands.js';
import type { TagWriter } from './tag-writer.js';
import type { Pipeline, PipelineFactory } from '../pipeline/pipeline.js';
import type { FailureKind } from '../links/failures.js';
import type { AudioPacket, VideoFrame } from '../media/sinks.js';

/** What feeds the output: the publisher's media, or the still picture while the publisher is away. */
export type FeedSource = 'publisher' | 'still';

export interface FeedOptions {
  publisher: Publisher;
  plan: EncodingPlan;
  writer: TagWriter;
  audio: AudioCommands;
  pipelines: PipelineFactory;
  /** How long a new pipeline may take to write its first frame before it takes over anyway. */
  startTimeoutMs: number;
  log: Logger;
  /** A pipeline feeding the output ended (with why, and what kind of failure). */
  onLost(reason: string, kind: FailureKind): void;
  /** A switch is complete: the new source's pipeline feeds the output. */
  onSwitched(): void;
}

/**
 * The one owner of what feeds a push's output: its source (the publisher, or the still
 * picture while the publisher is away), its pipelines (the current one, and the one about to take
 * over during a switch), and the routing of the publisher's packets and frames to them. The link is
 * the push's; the feed writes to it through the `TagWriter`.
 *
 * Every switch of source is made before the old pipeline is broken: the new pipeline is fed while
 * the current one goes on (its mixer writes silence when no audio comes), and takes over at its
 * first keyframe (its first audio frame when it makes no video), or after the start-up timeout.
 * However long ffmpeg takes to start, the output does not pause. The still picture goes on until
 * what replaces it is there: live video passed through, from its first frame written (a keyframe);
 * a pipeline's video, once the output has reached its first frame; and it hands its audio over
 * only once live video has replaced its picture, and once its sound has met the new pipeline's
 * (`AudioTail`: the new pipeline's sound waits for it).
 */
export class PushFeed {
  readonly input = new PublisherInput(
    { audio: (packet) => this.#onAudio(packet), frame: (frame) => this.#onFrame(frame) },
    (error) =>
      this.options.log.error({ err: error }, "handling the publisher's media threw: the other pushes still get it"),
  );
  #source: FeedSource = 'publisher';
  #publisher: Publisher;
  #plan: EncodingPlan;
  #current: Pipeline | undefined;
  /** The pipeline about to take over, and the tags it wrote so far. */
  #pending: Pipeline | undefined;
  /**
   * An audio-only switch under way: the capture time (ms) from which the pending pipeline has the
   * publisher's audio. The current one gets none after it, and what it makes of that time (its
   * timeline's silence for a stall) would stand in the way of the pending one's: it is not written.
   */
  #audioHandedAtMs: number | undefined;
  #held: FlvTag[] = [];
  /** The publisher-clock time of the pending pipeline's first frame that can take over, once it came. */
  #readyAt: { kind: MediaKind; captureMs: number } | undefined;
  #handOverTimer: NodeJS.Timeout | undefined;
  /** Counts switches: a switch overtaken by another, by a loss or by the end gives way. */
  #switches = 0;
  /** Switches under way: a pipeline they start is closed by them if it is no longer wanted. */
  readonly #switching = new Set<Promise<void>>();
  /** Pipelines being closed: `close` waits for them, so no ffmpeg outlives the feed. */
  readonly #dropping = new Set<Promise<void>>();
  /** Lets go of the publisher it takes its media from (a simulcast layer no push holds is let go). */
  #release: () => void;
  /** The source size each transcoding pipeline started on. */
  readonly #startSizes = new StartSizes();
  /**
   * A switch made because the source grew: the current pipeline is fed beside the pending one
   * until it takes over, so the output goes on unbroken.
   */
  #overlap = false;
  /** The still picture's sound going on after a pipeline took its video over, until it reaches the new one's. */
  #tail: AudioTail | undefined;

  constructor(private readonly options: FeedOptions) {
    this.#publisher = options.publisher;
    this.#release = this.#publisher.hold();
    this.#plan = options.plan;
  }

  get publisher(): Publisher {
    return this.#publisher;
  }
  get plan(): EncodingPlan {
    return this.#plan;
  }
  /** The pipeline feeding the output now. */
  get current(): Pipeline | undefined {
    return this.#current;
  }
  /** The pipeline about to take over during a switch; the current one goes on meanwhile. */
  get pending(): Pipeline | undefined {
    return this.#pending;
  }
  /** Every pipeline running: audio commands apply to each. */
  get pipelines(): Pipeline[] {
    return [this.#current, this.#pending, this.#tail?.still].filter((p) => p !== undefined);
  }

  /** Whether ffmpeg carries the publisher's video (transcoding) rather than the gateway (passthrough). */
  get videoInFfmpeg(): boolean {
    return this.#source === 'publisher' && this.#publisher.videoCodec !== undefined && this.#plan.video === 'transcode';
  }

  /**
   * The Enhanced RTMP codecs of the publisher's video it passes through, for a link to announce
   * (while the still picture stands in too: the link goes on when the publisher is back).
   */
  get videoFourCcs(): readonly FourCc[] {
    return this.#plan.video === 'copy' && this.#publisher.videoCodec === 'AV1' ? [FourCc.AV1] : [];
  }

  /** Whether the output has video to start a link with: the publisher's, or the still picture. */
  get hasVideo(): boolean {
    return this.#source === 'still'
      ? this.options.writer.picture !== undefined
      : this.#publisher.videoCodec !== undefined;
  }

  /** Starts a pipeline for the current source, not yet feeding the output (`use` makes it). */
  startPipeline(): Promise<Pipeline> {
    const { writer, audio } = this.options;
    const publisher = this.#publisher;
    const picture = this.#source === 'still' ? writer.picture : undefined;
    return this.options.pipelines({
      plan: this.#plan,
      video: this.videoInFfmpeg ? publisher.videoCodec : undefined,
      still: picture && { picture, fps: Math.min(30, Math.max(5, Math.round(publisher.frameRate ?? 30))) },
      muted: audio.muted,
      sound: audio.sound,
      // Nothing to mix: the publisher's Opus goes to ffmpeg as it is, decoded there and not here.
      // A transcoding ffmpeg is given PCM: with the Opus passed to it as well, its added latency
      // was 53/67-69 ms (median/p95) against 40-45/57-61 ms, for the same CPU in all (3 paired runs).
      opus: this.#source === 'publisher' && publisher.hasAudio && !this.videoInFfmpeg && audio.sound === undefined,
      stream: publisher,
      canStartAt: (captureMs) => writer.timeline.canStartAt(captureMs),
      pictureStarted:
        !writer.timeline.placedAny && this.#source === 'publisher' && publisher.videoCodec !== undefined
          ? () => writer.timeline.linkStarted
          : undefined,
    });
  }

  /** Makes `pipe` the current pipeline: its tags go out, its end is a loss. */
  use(pipe: Pipeline): void {
    this.#current = pipe;
    pipe.onTags((tags) => {
      if (this.#tail?.still === pipe) return this.#tail.stillTags(tags);
      if (this.#current !== pipe) return; // one that was replaced, closing
      const handedAtMs = this.#pending ? this.#audioHandedAtMs : undefined;
      for (const tag of tags) {
        if (handedAtMs !== undefined && handedOver(tag, pipe, handedAtMs)) continue;
        this.#write(tag, pipe);
      }
      if (this.#pending && this.#readyAt) this.#takeOverIfReached(this.#pending);
    });
    pipe.onLost((reason, kind) => {
      if (this.#current === pipe) this.options.onLost(reason, kind);
    });
  }

  /**
   * Starts feeding the output. The publisher: from the cached keyframe when it is newer than
   * anything sent before (at once, its timestamps going on), otherwise from the keyframe asked for
   * now. The still picture: from now.
   */
  attach(first: boolean): void {
    const publisher = this.#publisher;
    if (this.#source === 'publisher') {
      let started = false;
      if (!this.input.attached) {
        const cachedMs = publisher.cachedKeyframeMs;
        const fromCache = cachedMs !== undefined && (first || this.options.writer.timeline.isAhead(cachedMs));
        started = this.input.attach(publisher, fromCache);
      }
      // The cached media, on its way through the input's queue, starts the audio timeline at the keyframe.
      if (started) return;
      publisher.requestKeyframe(true);
    }
    // With no packet yet (an audio-only publisher that is silent, or none), the audio timeline starts now.
    (this.#pending ?? this.#current)?.begin(monotonicMs());
  }

  /** Stops taking the publisher's media. */
  detach(): void {
    this.input.detach();
  }

  /**
   * Sets what feeds the output from now; `back` is the publisher that came back, with its plan. The
   * still picture takes none of the publisher's media. `startSwitch` puts it on the output.
   */
  setSource(source: FeedSource, back?: { publisher: Publisher; plan: EncodingPlan }): void {
    this.#source = source;
    if (back) {
      this.#release();
      this.#publisher = back.publisher;
      this.#release = back.publisher.hold();
      this.#plan = back.plan;
    }
    if (source === 'still') this.input.detach();
  }

  /** Starts a pipeline for the source and has it take over from the current one when ready, keeping the link. */
  startSwitch(): void {
    this.#startSwitch(false);
  }

  /**
   * An audio command the pipeline cannot carry out (a sound over the publisher's Opus passed as it
   * is, a mute of an encoder other pushes share): a pipeline of this output's own, made for the
   * commands now, takes over. Video the gateway passes through goes on untouched, and only the
   * audio changes hands, at the new pipeline's first audio frame; a transcoded rendition changes
   * hands whole, at its first keyframe.
   */
  startOwnPipeline(): void {
    if (this.#source !== 'publisher') return;
    this.#startSwitch(!this.videoInFfmpeg);
  }

  #startSwitch(audioOnly: boolean, overlap = false): void {
    const switching = this.#switch(audioOnly, overlap)
      .catch((error: unknown) => this.options.log.warn({ err: error }, 'switching the source failed'))
      .finally(() => this.#switching.delete(switching));
    this.#switching.add(switching);
  }

  /**
   * The publisher went away again while a switch back to it was under way: the still picture,
   * which is still the current pipeline, goes on and the pending one is dropped.
   */
  keepStill(): void {
    const current = this.#current;
    if (current?.source.still) current.source.audioOnly = false;
    this.#source = 'still';
    this.input.detach();
    this.#switches++;
    void this.#dropPending();
  }

  /** Ends the pipelines (current and pending); a switch under way gives way. Resolves once they are closed. */
  drop(): Promise<void> {
    this.#switches++;
    const pipe = this.#current;
    this.#current = undefined;
    this.#tail?.finish();
    return this.#tracked(Promise.all([pipe?.close(), this.#dropPending()]));
  }

  /** Ends everything; no timer fires after this. Resolves once every pipeline it started is closed. */
  async close(): Promise<void> {
    this.input.detach();
    this.#release();
    clearTimeout(this.#handOverTimer);
    // A switch under way closes the pipeline it was starting (drop makes it give way).
    await Promise.all([this.drop(), ...this.#switching, ...this.#dropping]);
  }

  /** Audio goes to the pipeline: the pending one while a switch is under way (both, while they overlap). */
  #onAudio(packet: AudioPacket): void {
    const pipe = this.#pending ?? this.#current;
    if (!pipe) return;
    begin(pipe, packet.captureMs);
    pipe.writeAudio(packet, this.#publisher);
    if (this.#overlap && this.#current && this.#current !== pipe) this.#current.writeAudio(packet, this.#publisher);
  }

  /**
   * Video frames go out as they are, or to the pipeline that transcodes them. The first one that
   * goes out replaces the still picture's video, if it is still on.
   */
  #onFrame(frame: VideoFrame): void {
    const pipe = this.#pending ?? this.#current;
    if (pipe) begin(pipe, frame.captureMs);
    if (this.videoInFfmpeg) {
      if (this.#overlap && this.#current && this.#current !== pipe) this.#current.writeVideo(frame);
      pipe?.writeVideo(frame);
      // After the frame went in: a shared rendition the source outgrew takes no new push then.
      if (frame.key) this.#followSize(frame);
      return;
    }
    if (!this.options.writer.writeFrame(frame)) return;
    const current = this.#current;
    if (!current?.source.still || current.source.audioOnly) return;
    current.source.audioOnly = true;
    if (this.#pending && this.#readyAt) this.#takeOverIfReached(this.#pending);
  }

  /**
   * Transcoded output follows the source up, make before break: a keyframe larger than the size the
   * current pipeline started on starts a pipeline at the new size, fed beside the current one until
   * its first keyframe takes over on the same link. A push that asked for a size or a shape keeps it.
   */
  #followSize(frame: VideoFrame): void {
    const grown = this.#startSizes.grown(frame, this.#current, this.#pending);
    if (
      !grown ||
      this.#pending ||
      this.#overlap ||
      this.#plan.video !== 'transcode' ||
      this.#plan.scale ||
      this.#plan.shape ||
      this.#current?.source.still
    )
      return;
    this.options.log.info(grown, 'the source grew: a pipeline at its new size takes over, make before break');
    this.#startSwitch(false, true);
  }

  /** A pipeline closing, which `close` waits for until it is done. */
  #tracked(closing: Promise<unknown>): Promise<void> {
    const dropping: Promise<void> = closing.then(() => void this.#dropping.delete(dropping));
    this.#dropping.add(dropping);
    return dropping;
  }

  async #dropPending(): Promise<void> {
    const pipe = this.#pending;
    this.#pending = undefined;
    this.#audioHandedAtMs = undefined;
    this.#overlap = false;
    this.#held = [];
    this.#readyAt = undefined;
    clearTimeout(this.#handOverTimer);
    await pipe?.close();
  }

  /**
   * Replaces the pipeline for the current source: the new source starts with its own codec headers
   * and a keyframe, timestamps going on. The current pipeline goes on until the new one takes over;
   * when live video passed through replaces the still picture, only its sound does.
   */
  async #switch(audioOnly: boolean, overlap: boolean): Promise<void> {
    const { writer, startTimeoutMs } = this.options;
    const switchNo = ++this.#switches;
    this.#tail?.finish();
    void this.#dropPending();
    this.#overlap = overlap;
    if (!audioOnly) writer.newSource();
    let pipe: Pipeline;
    try {
      pipe = await this.startPipeline();
    } catch (error) {
      if (switchNo !== this.#switches) return;
      // The source grew, and no pipeline at its size could start: the current one goes on.
      if (overlap) {
        this.#overlap = false;
        this.options.log.warn(
          { reason: (error as Error).message },
          "a pipeline at the source's new size did not start: the output keeps its size",
        );
        return;
      }
      this.options.onLost((error as Error).message, 'local');
      return;
    }
    if (switchNo !== this.#switches) {
      await pipe.close();
      return;
    }
    if (this.#current) {
      this.#pending = pipe;
      pipe.onTags((tags) => this.#hold(pipe, tags));
      pipe.onLost((reason, kind) => {
        if (this.#pending !== pipe) return;
        this.#takeOver(pipe);
        this.options.onLost(reason, kind);
      });
      // Without its first frame in time, it takes over anyway.
      this.#handOverTimer = setTimeout(() => this.#takeOver(pipe), startTimeoutMs);
    } else {
      this.use(pipe);
      this.options.onSwitched();
    }
    // The publisher's video goes on as it was: the new pipeline's audio starts with its next packet.
    if (audioOnly) {
      const handedAtMs = monotonicMs();
      pipe.begin(handedAtMs);
      if (this.#pending === pipe) this.#audioHandedAtMs = handedAtMs;
    } else this.attach(false);
  }

  #hold(pipe: Pipeline, tags: FlvTag[]): void {
    this.#held.push(...tags);
    if (!this.#readyAt) {
      const kind = pipe.source.still || pipe.source.transcoding ? 'video' : 'audio';
      const first = tags.find(kind === 'video' ? isKeyframeTag : isAudioFrameTag);
      if (!first) return;
      const startMs = kind === 'video' ? pipe.source.videoStartMs : pipe.source.audioStartMs;
      if (startMs === undefined) return this.#takeOver(pipe);
      this.#readyAt = { kind, captureMs: startMs + first.timestamp };
    }
    this.#takeOverIfReached(pipe);
  }

  /**
   * Takes over once the output has reached the pending pipeline's first frame: at once from live
   * media (its input is gone, nothing more comes of it), from the still picture once it got there,
   * and, when only audio takes over from it, once live video has replaced its picture.
   */
  #takeOverIfReached(pipe: Pipeline): void {
    const ready = this.#readyAt;
    const current = this.#current;
    if (!ready) return;
    if (current?.source.still) {
      if (ready.kind === 'audio' && this.#publisher.videoCodec !== undefined && !current.source.audioOnly) return;
      const { timeline } = this.options.writer;
      const frameMs = 1000 / (this.#publisher.frameRate ?? 30);
      if (timeline.last(ready.kind) + frameMs < timeline.at(ready.captureMs)) return;
    }
    this.#takeOver(pipe);
  }

  /**
   * The pending pipeline replaces the current one, what it held going out first (its sound once the
   * still picture's, when that is behind, has met it).
   */
  #takeOver(pipe: Pipeline): void {
    const { writer } = this.options;
    if (this.#pending !== pipe) return;
    clearTimeout(this.#handOverTimer);
    const held = this.#held;
    this.#pending = undefined;
    this.#audioHandedAtMs = undefined;
    this.#overlap = false;
    this.#held = [];
    this.#readyAt = undefined;
    const previous = this.#current;
    this.#current = undefined;
    this.use(pipe);
    // Its first keyframe was captured before the last still frames were sent: its timeline is moved
    // on to one frame after them, audio and video alike.
    const keyframe = held.find(isKeyframeTag);
    if (keyframe && pipe.source.videoStartMs !== undefined) {
      const frameMs = 1000 / (this.#publisher.frameRate ?? 30);
      pipe.source.shiftMs = writer.timeline.shiftFor(pipe.source.videoStartMs + keyframe.timestamp, frameMs);
    }
    const tail =
      previous &&
      AudioTail.after(previous, pipe, writer, (audio) => {
        if (this.#tail === tail) this.#tail = undefined;
        void this.#tracked(previous.close());
        if (this.#current === pipe) for (const tag of audio) writer.writeTag(tag, pipe.source);
      });
    this.#tail = tail;
    if (!tail) void this.#tracked(Promise.resolve(previous?.close()));
    this.options.onSwitched();
    for (const tag of held) this.#write(tag, pipe);
  }

  /** A tag of a pipeline feeding the output goes out, its audio once the still's sound has reached it. */
  #write(tag: FlvTag, pipe: Pipeline): void {
    if (!this.#tail?.holds(tag)) this.options.writer.writeTag(tag, pipe.source);
  }
}

/** Whether `tag` is a sound frame of `pipe` captured from `handedAtMs` on, when another pipeline has the audio. */
function handedOver(tag: FlvTag, pipe: Pipeline, handedAtMs: number): boolean {
  return isAudioFrameTag(tag) && (audioEndMs(tag, pipe.source) ?? -Infinity) >= handedAtMs;
}

/** A pipeline's audio timeline starts with the first packet or frame it is given; later ones leave it be. */
function begin(pipe: Pipeline, captureMs: number): void {
  if (pipe.source.audioStartMs === undefined) pipe.begin(captureMs);
}
