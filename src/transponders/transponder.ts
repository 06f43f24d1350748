import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { TypedEmitter } from '../events.js';
import type { Publisher } from '../publishers/publisher.js';
import type { CachedPacket } from '../publishers/start-cache.js';
import type { VideoFrame } from '../publishers/frames.js';
import type { Destination } from './destination.js';
import type { EncodingPlan } from './encoding.js';
import { OutputWriter, passthroughMetadata } from './output.js';
import { OutputAudio } from './output-audio.js';
import type { Pipeline } from './pipeline.js';
import { errorCodeFor, HEALTHY_RESET_MS, OpenError, RestorePolicy, type FailureKind } from './restore.js';
import type { FailureCode, TransponderInfo } from './info.js';
import { LinkTotals, type Link, type LinkStats } from './rtmp-link.js';
import { PublisherInput } from './input.js';
import type { TransponderConfig, TransponderOptions, TransponderParts } from './settings.js';
import { isActive, isUp, TRANSITIONS, type TransponderState } from './states.js';
import { cachedKeyframe, TimeoutError, withinTimeout } from './waits.js';
import { Standby } from './standby.js';
import { describe } from './view.js';

export type TransponderEvents = {
  state: [TransponderState];
  closed: [];
};

/**
 * One (stream, destination) pair: the state table, the restore loop and what feeds the output.
 * The output has two halves that fail separately, each opened by a factory it is given: the link
 * (`rtmp-link.ts`: the RTMP session) and the pipeline (`pipeline.ts`: ffmpeg and its input). The
 * publisher's H.264 frames are passed through by the `OutputWriter` (`output.ts`); its audio (and
 * video to transcode) goes to the pipeline, whose tags the writer places on the same timeline.
 *
 * When either half breaks while up, the transponder goes to `reconnecting` (`#lose`) and opens what
 * is missing again after a wait (`#restore`, one attempt being `#open`); each new link starts with
 * codec headers and a keyframe, its timestamps going on. `Standby` holds the output with a still
 * picture while the publisher is away, and hands back over to live video when it returns.
 */
export class Transponder extends TypedEmitter<TransponderEvents> {
  readonly mediaSessionId: string;
  readonly createdAt = Date.now();
  readonly counters = { drops: 0, reconnects: 0 };
  readonly writer: OutputWriter;
  /** The publisher's absence: the still picture, the grace period and the hand-over back to live. */
  readonly standby: Standby;
  /** Mute and the sound played, applied to every pipeline. */
  readonly audio: OutputAudio;
  #state: TransponderState = 'starting';
  #publisher: Publisher;
  #plan: EncodingPlan;
  #lastError: string | undefined;
  #link: Link | undefined;
  #pipe: Pipeline | undefined;
  readonly input = new PublisherInput({ packet: (packet) => this.#onPacket(packet), frame: (frame) => this.#onFrame(frame) });
  readonly #links = new LinkTotals();
  readonly #policy: RestorePolicy;
  #retryTimer: NodeJS.Timeout | undefined;
  #upSince = 0; // when output was last restored (or first started)
  #failure: FailureKind | undefined;
  readonly #settled: Promise<void>;
  #settle!: () => void;
  #closing: Promise<void> | undefined;
  readonly #dropping = new Set<Promise<void>>();
  #releasing: Promise<void> | undefined;

  constructor(
    publisher: Publisher,
    readonly destination: Destination,
    plan: EncodingPlan,
    readonly request: TransponderOptions,
    readonly config: TransponderConfig,
    private readonly parts: TransponderParts,
    readonly log: Logger,
  ) {
    super((event, error) => log.error({ err: error, event }, 'transponder listener failed'));
    this.mediaSessionId = request.id ?? randomUUID();
    this.#publisher = publisher;
    this.#plan = plan;
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
    this.#policy = new RestorePolicy(config.restore);
    this.writer = new OutputWriter({
      sendMetadata: config.sendMetadata,
      audioSampleRate: config.encoding.audioSampleRate,
      metadata: (size) =>
        passthroughMetadata(size, this.#publisher.frameRate, { sampleRate: config.encoding.audioSampleRate, bitrateKbps: this.#plan.audioBitrateKbps ?? config.encoding.audioBitrateKbps }),
      onBadSps: (error) => log.warn({ err: error }, 'unreadable SPS'),
      onResizeSent: (from, to) => log.warn({ from: `${from.width}x${from.height}`, to: `${to.width}x${to.height}` }, 'the picture size sent changed mid-stream'),
    });
    this.audio = new OutputAudio(() => [this.#pipe, this.standby.pending], log);
    const self = this; // the host's getters read this transponder
    this.standby = new Standby({
      get state() { return self.#state; },
      get isUp() { return self.isUp; },
      get hasLink() { return self.#link !== undefined; },
      get pipe() { return self.#pipe; },
      get videoInFfmpeg() { return self.videoInFfmpeg; },
      get publisher() { return self.#publisher; },
      writer: this.writer,
      log,
      startTimeoutMs: config.startTimeoutMs,
      transition: (next) => this.#transition(next),
      note: (reason) => (this.#lastError = reason),
      lose: (reason, kind, keepLink) => this.#lose(reason, kind, keepLink),
      startPipeline: () => this.#startPipeline(),
      usePipeline: (pipe) => this.#usePipeline(pipe),
      dropPipeline: () => this.#dropPipeline(),
      attachSource: (first) => this.#attachSource(first),
      detachSource: () => this.input.detach(),
      stop: () => this.stop(),
    });
  }

  get state(): TransponderState {
    return this.#state;
  }
  get publisher(): Publisher {
    return this.#publisher;
  }
  get plan(): EncodingPlan {
    return this.#plan;
  }
  get lastError(): string | undefined {
    return this.#lastError;
  }
  /** Resolves once the transponder is running, has failed, or is being stopped. */
  get ready(): Promise<void> {
    return this.#settled;
  }
  /** Starting, up or reconnecting: audio commands apply. */
  get isActive(): boolean {
    return isActive(this.#state);
  }
  get isUp(): boolean {
    return isUp(this.#state);
  }
  /** Attempts of the current outage, 0 once output has been up for a minute. */
  get reconnectAttempt(): number {
    return this.isUp && Date.now() - this.#upSince >= HEALTHY_RESET_MS ? 0 : this.#policy.attempt;
  }
  /** Whose fault a failure was: the destination's (refused, unreachable) or the gateway's. Undefined unless failed. */
  get errorCode(): FailureCode | undefined {
    return this.#state === 'failed' ? errorCodeFor(this.#failure ?? 'local') : undefined;
  }
  /** Counts of every link so far, and the current link's lag and output buffer. */
  get output(): LinkStats & { lagMs: number; acknowledgedAt?: number; buffer?: { state: string; levelMs: number } } {
    return { ...this.#links.with(this.#link?.stats), lagMs: this.#link?.lagMs ?? 0, acknowledgedAt: this.#link?.acknowledgedAt, buffer: this.#link?.buffer };
  }
  /** The stream is published again: `publisher`'s live media replaces the still picture. */
  resume(publisher: Publisher, plan: EncodingPlan): void {
    if (!this.standby.awaiting) return;
    this.#publisher = publisher;
    this.#plan = plan;
    this.standby.resume();
  }

  /** Whether ffmpeg carries the publisher's video (transcoding) rather than the gateway (passthrough). */
  get videoInFfmpeg(): boolean {
    return this.#publisher.videoCodec !== undefined && this.#plan.video === 'transcode' && !this.standby.awaiting;
  }

  /** Starts in the background; `ready` tells when it is up. */
  start(): void {
    this.#run().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error), error instanceof OpenError ? error.kind : 'local'));
  }

  async #run(): Promise<void> {
    if (this.#publisher.videoCodec) await cachedKeyframe(this.#publisher, this.config.startTimeoutMs);
    if (this.#state !== 'starting') return;
    await this.#open();
    if (this.#state !== 'starting') return;
    this.#upSince = Date.now();
    this.#transition('running');
    this.log.info({ size: this.writer.size, plan: this.#plan.video }, 'publishing to the destination');
    this.#settle();
  }

  /** Whether an attempt to open the output is still wanted. */
  get #opening(): boolean {
    return this.#state === 'starting' || this.#state === 'reconnecting';
  }

  /**
   * One attempt: opens what is missing of the output, the link and the pipeline side by side,
   * starts feeding them and waits for the pipeline's first output. Throws an `OpenError`; closes
   * what it opened when it fails or is no longer wanted.
   */
  async #open(): Promise<void> {
    const first = this.#state === 'starting';
    const [linked, piped] = await Promise.allSettled([
      this.#link ? undefined : this.parts.links(this.#state === 'reconnecting'),
      this.#pipe ? undefined : this.#startPipeline(),
    ]);
    const link = linked.status === 'fulfilled' ? linked.value : undefined;
    const pipe = piped.status === 'fulfilled' ? piped.value : undefined;
    if (linked.status === 'rejected' || piped.status === 'rejected' || !this.#opening) {
      await Promise.all([link?.close(), pipe?.close()]);
      if (linked.status === 'rejected') throw linked.reason;
      if (piped.status === 'rejected') throw new OpenError((piped.reason as Error).message, 'local');
      return;
    }
    if (link) this.#useLink(link);
    if (pipe) this.#usePipeline(pipe);
    this.#attachSource(first);
    try {
      await withinTimeout(this.#pipe?.output, this.config.startTimeoutMs, 'ffmpeg wrote no output');
    } catch (error) {
      throw new OpenError((error as Error).message, error instanceof TimeoutError ? 'slow' : 'local');
    }
    if (!this.#opening) return;
    if (!this.#link) throw new OpenError(this.#lastError ?? 'the destination connection was lost', 'unreachable');
    if (!this.#pipe) throw new OpenError(this.#lastError ?? 'ffmpeg ended', 'local');
  }

  /**
   * Starts feeding the output. The publisher: from the cached keyframe when it is newer than
   * anything sent before (at once, its timestamps going on), otherwise from the keyframe asked for
   * now. The still picture: from now.
   */
  #attachSource(first: boolean): void {
    const publisher = this.#publisher;
    if (!this.standby.awaiting) {
      let started = false;
      if (!this.input.attached) {
        const cachedMs = publisher.cachedKeyframeMs;
        const fromCache = cachedMs !== undefined && (first || this.writer.timeline.isAhead(cachedMs));
        started = this.input.attach(publisher, fromCache);
      }
      if (!started) publisher.requestKeyframe(true);
    }
    // With no packet yet (an audio-only publisher that is silent, or none), the audio timeline starts now.
    (this.standby.pending ?? this.#pipe)?.begin(Date.now());
  }

  /** Audio goes to the pipeline: the pending one while a switch is under way. */
  #onPacket(packet: CachedPacket): void {
    const pipe = this.standby.pending ?? this.#pipe;
    if (!pipe) return;
    pipe.begin(packet.wallclockMs); // the audio timeline starts with the first packet of either kind
    if (packet.kind === 'audio') pipe.writeAudio(this.#publisher.audioPcm(packet), packet.wallclockMs);
  }

  /** Video frames go out as they are, or to the pipeline that transcodes them. */
  #onFrame(frame: VideoFrame): void {
    if (!this.videoInFfmpeg) this.writer.writeFrame(frame);
    else (this.standby.pending ?? this.#pipe)?.writeVideo(frame);
  }

  /** Starts a pipeline for the current source: the publisher, or the still picture while it is away. */
  #startPipeline(): Promise<Pipeline> {
    const publisher = this.#publisher;
    const picture = this.standby.awaiting ? this.writer.picture : undefined;
    return this.parts.pipelines({
      plan: this.#plan,
      video: this.videoInFfmpeg ? publisher.videoCodec : undefined,
      still: picture && { picture, fps: Math.min(30, Math.max(5, Math.round(publisher.frameRate ?? 30))) },
      muted: this.audio.muted,
      sound: this.audio.sound,
    });
  }

  /** Makes `link` the link: a new RTMP session, which starts with headers and a keyframe. */
  #useLink(link: Link): void {
    this.#link = link;
    // Audio waits for the link's first keyframe, if video is to come.
    const video = this.standby.awaiting ? this.writer.picture !== undefined : this.#publisher.videoCodec !== undefined;
    this.writer.useLink(link.out, video);
    link.onLost((reason, kind) => {
      if (this.#link === link) this.#lose(reason, kind, false);
    });
  }

  /** Ends the link, its counts kept; resolves when its socket is closed. */
  async #dropLink(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    this.writer.dropLink();
    if (!link) return;
    this.#links.add(link.stats);
    await link.close();
  }

  /** Makes `pipe` the pipeline: its tags go out, its end is a loss. */
  #usePipeline(pipe: Pipeline): void {
    this.#pipe = pipe;
    pipe.onTags((tags) => {
      for (const tag of tags) this.writer.writeTag(tag, pipe.source);
      this.standby.currentWrote();
    });
    pipe.onLost((reason, kind) => {
      if (this.#pipe === pipe) this.#lose(reason, kind, true);
    });
  }

  /** Ends the pipeline and any pending one; `stop` waits for every one ended so far, so no ffmpeg outlives the transponder. */
  #dropPipeline(): Promise<void> {
    const pipe = this.#pipe;
    this.#pipe = undefined;
    const dropping: Promise<void> = Promise.all([pipe?.close(), this.standby.dropPending()]).then(() => void this.#dropping.delete(dropping));
    this.#dropping.add(dropping);
    return dropping;
  }

  /**
   * Output broke: the pipeline (and the link, unless kept) is ended. While up, go to `reconnecting`
   * and open what is missing again after a wait, or fail when restoring is off or exhausted. Before
   * the first start a failure fails the startup; during an attempt, the attempt reports it.
   */
  #lose(reason: string, kind: FailureKind, keepLink: boolean): void {
    if (!keepLink) void this.#dropLink();
    void this.#dropPipeline();
    if (this.#state === 'starting') return this.#fail(reason, kind);
    if (!this.isUp) return;
    this.counters.drops++;
    this.#lastError = reason;
    this.log.warn({ reason }, 'output lost');
    if (Date.now() - this.#upSince >= HEALTHY_RESET_MS) this.#policy.healthy();
    this.standby.interrupt(); // a switch under way gives way to the restore
    this.#transition('reconnecting');
    if (!keepLink) this.input.detach();
    this.#scheduleAttempt(kind, reason);
  }

  /** The wait runs from the failed attempt's start: after seconds spent on a SYN nobody answered (a network cut), the next goes at once. */
  #scheduleAttempt(kind: FailureKind, reason: string, attemptStartedAt = Date.now()): void {
    const decision = this.#policy.next(kind, reason);
    if ('giveUp' in decision) return this.#fail(decision.giveUp, kind);
    const inMs = Math.max(0, attemptStartedAt + decision.retryInMs - Date.now());
    this.log.info({ attempt: this.#policy.attempt, inMs }, 'restoring the output');
    this.#retryTimer = setTimeout(() => void this.#restore(), inMs);
  }

  async #restore(startedAt = Date.now()): Promise<void> {
    if (this.#state !== 'reconnecting') return;
    try {
      await this.#open();
    } catch (error) {
      if (this.#state !== 'reconnecting') return;
      if (!this.#link) this.input.detach(); // passed-through video goes on over a kept link
      void this.#dropPipeline();
      this.#lastError = (error as Error).message;
      this.log.warn({ reason: this.#lastError, attempt: this.#policy.attempt }, 'restore attempt failed');
      this.#scheduleAttempt(error instanceof OpenError ? error.kind : 'local', this.#lastError, startedAt);
      return;
    }
    if (this.#state !== 'reconnecting') return;
    this.#policy.restored();
    this.#upSince = Date.now();
    this.counters.reconnects++;
    this.#transition(this.standby.awaiting ? 'standby' : 'running');
    this.log.info({ attempt: this.#policy.attempt }, 'output restored');
  }

  #fail(reason: string, kind: FailureKind): void {
    if (!TRANSITIONS[this.#state].includes('failed')) return;
    this.#lastError = reason;
    this.#failure = kind;
    this.#transition('failed');
    this.log.warn({ reason }, 'transponder failed');
    this.#settle();
    void this.#release();
  }

  /** Changes state through the table; a change it does not allow is a bug. */
  #transition(next: TransponderState): void {
    if (!TRANSITIONS[this.#state].includes(next)) throw new Error(`transponder cannot go from ${this.#state} to ${next}`);
    this.#state = next;
    this.safeEmit('state', next);
  }

  /** Ends it all and releases everything (a failed one stays `failed`, with `lastError`); idempotent, resolves when all is released. */
  stop(): Promise<void> {
    this.#closing ??= (async () => {
      if (TRANSITIONS[this.#state].includes('stopping')) this.#transition('stopping');
      this.#settle();
      await this.#release();
      if (this.#state === 'stopping') this.#transition('stopped');
      this.log.info({ state: this.#state }, 'transponder closed');
      this.safeEmit('closed');
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  #release(): Promise<void> {
    this.#releasing ??= (async () => {
      clearTimeout(this.#retryTimer);
      const switching = this.standby.close();
      this.input.detach();
      // With the pipelines ended earlier (a switch of source) that are still closing.
      await Promise.all([this.#dropLink(), this.#dropPipeline(), this.audio.stop(), switching, ...this.#dropping]);
    })();
    return this.#releasing;
  }

  /** The Web Call Server shape, plus `state`, `lastError`, restore attempts and counters. Holds no secret. */
  toJSON(): TransponderInfo {
    return describe(this);
  }
}
