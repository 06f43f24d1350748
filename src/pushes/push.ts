import { processCpuSeconds } from '../core/load.js';
import { monotonicMs, wallClockMs } from '../core/clock.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { TypedEmitter } from '../core/events.js';
import type { Publisher } from '../publishers/publisher.js';
import type { Destination } from '../outputs/destination.js';
import type { EncodingPlan } from '../pipeline/encoding.js';
import { passthroughMetadata, TagWriter } from './tag-writer.js';
import { OutputAudio } from '../pipeline/output-audio.js';
import { HEALTHY_RESET_MS, RestorePolicy } from './restore.js';
import type { PushInfo, Sheddable } from './info.js';
import { PushFeed } from './feed.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { PushConfig, PushOptions, PushParts } from './settings.js';
import {
  isActive,
  isReconnecting,
  isUp,
  publisherAway,
  shownState,
  TRANSITIONS,
  type PushPhase,
  type PushState,
} from './states.js';
import { Standby } from './standby.js';
import { describe } from './description.js';
import { IngestHealth, type Health } from './health.js';
import { PLATFORMS } from '../outputs/platforms.js';
import { errorCodeFor, type FailureCode, type FailureKind, OpenError } from '../outputs/failures.js';
import { type Link, type LinkStats, LinkTotals } from '../outputs/link.js';
import { LayerPin } from './layer-pin.js';

/**
 * A push held to its simulcast layer (`LayerPin`) holds standby while the layer is away for at most
 * this long (the longest timer there is, 24.8 days).
 */
const PIN_HOLD_MS = 2 ** 31 - 1;

export type PushEvents = {
  state: [PushState];
  /** Its ingest health changed status (good, warning, bad). */
  health: [Health];
  closed: [];
};

/**
 * One (stream, destination) pair: the state table, the restore loop and what feeds the output.
 * The output has two halves that fail separately, each opened by a factory it is given: the link
 * (`rtmp-link.ts`: the RTMP session) and the pipeline (`pipeline.ts`: ffmpeg and its input). The
 * publisher's H.264 frames are passed through by the `TagWriter` (`tag-writer.ts`); its audio (and
 * video to transcode) goes to the pipeline, whose tags the writer places on the same timeline.
 *
 * When either half breaks while up, the push goes to `reconnecting` (`#lose`) and opens what
 * is missing again after a wait (`#restore`, one attempt being `#open`); each new link starts with
 * codec headers and a keyframe, its timestamps going on. The `PushFeed` owns what feeds the
 * output (the publisher or, while it is away, the still picture; the pipelines; the switch between
 * them); `Standby` holds the grace period. Every state change is made here.
 */
export class Push extends TypedEmitter<PushEvents> {
  readonly mediaSessionId: string;
  /** When it was asked for: a date (listings), and on the monotonic clock (how long it took to start). */
  readonly createdAt = wallClockMs();
  readonly createdMonoMs = monotonicMs();
  readonly counters = { drops: 0, reconnects: 0, sheds: 0 };
  readonly writer: TagWriter;
  /** What a platform's dashboard checks, measured on what was sent. */
  readonly health: IngestHealth;
  /** The grace period while the publisher is away. */
  readonly standby = new Standby();
  /** Mute and the sound played, applied to every pipeline. */
  readonly audio: OutputAudio;
  /** What feeds the output: its source, its pipelines, the publisher's media routed to them. */
  readonly feed: PushFeed;
  #state: PushPhase = 'starting';
  #lastError: string | undefined;
  #link: Link | undefined;
  readonly #links = new LinkTotals();
  readonly #policy: RestorePolicy;
  #retryTimer: NodeJS.Timeout | undefined;
  #upSince = 0; // when output was last restored (or first started)
  #failure: FailureKind | undefined;
  /** The pipeline an attempt started and has not used yet (it waits for the link). */
  #openingPipe: Pipeline | undefined;
  readonly #settled: Promise<void>;
  #settle!: () => void;
  #closing: Promise<void> | undefined;
  #releasing: Promise<void> | undefined;
  /** Ended to leave the machine's CPU to the others (`shed`): it waits, reconnecting, for `unshed`. */
  #shed = false;
  /** Its simulcast layer, held to: exactly (`layerPolicy: "pin"`), or it and those below. */
  #pin: LayerPin | undefined;

  constructor(
    publisher: Publisher,
    readonly destination: Destination,
    plan: EncodingPlan,
    readonly request: PushOptions,
    readonly config: PushConfig,
    private readonly parts: PushParts,
    readonly log: Logger,
  ) {
    super((event, error) => log.error({ err: error, event }, 'push listener failed'));
    this.mediaSessionId = request.id ?? randomUUID();
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
    this.#policy = new RestorePolicy(config.restore);
    this.health = new IngestHealth(
      PLATFORMS.find((p) => p.name === request.platform),
      (health) => {
        log.info({ status: health.status, issues: health.issues }, 'ingest health');
        this.safeEmit('health', health);
      },
      () => this.feed.hasVideo,
    );
    this.writer = new TagWriter({
      health: this.health,
      sendMetadata: config.sendMetadata,
      audioSampleRate: config.encoding.audioSampleRate,
      metadata: (size) =>
        passthroughMetadata(
          size,
          (this.feed.plan.video === 'transcode' && this.feed.plan.fps) || this.feed.publisher.frameRate,
          {
            sampleRate: config.encoding.audioSampleRate,
            bitrateKbps: this.feed.plan.audioBitrateKbps ?? config.encoding.audioBitrateKbps,
          },
        ),
      captionMode: request.captions || undefined,
      onBadSps: () => log.warn('an SPS whose picture size cannot be read: the output size is not known'),
      onResizeSent: (from, to) =>
        log.warn(
          { from: `${from.width}x${from.height}`, to: `${to.width}x${to.height}` },
          'the picture size sent changed mid-stream',
        ),
    });
    this.audio = new OutputAudio(
      () => this.feed.pipelines,
      log,
      () => this.feed.startOwnPipeline(),
    );
    this.feed = new PushFeed({
      publisher,
      plan,
      writer: this.writer,
      audio: this.audio,
      pipelines: parts.pipelines,
      startTimeoutMs: config.startTimeoutMs,
      log,
      onLost: (reason, kind) => this.#lose(reason, kind, true),
      onSwitched: () => {
        if (this.#state === 'resuming') this.#transition('running');
      },
    });
    this.#pinTo(publisher, request.spatial);
  }

  /**
   * Holds standby while `publisher` sends a larger layer than `spatial`, or with `layerPolicy: "pin"`
   * any other one.
   */
  #pinTo(publisher: Publisher, spatial: number | undefined): void {
    this.#pin?.close();
    this.#pin = undefined;
    if (spatial === undefined) return;
    this.#pin = new LayerPin(
      publisher,
      spatial,
      this.request.video.layerPolicy ?? 'switch',
      {
        away: (reason) => this.publisherLost(reason, PIN_HOLD_MS),
        back: () => this.resume(publisher, this.feed.plan),
      },
      this.log,
    );
  }

  /** The state it shows (`find`, events). */
  get state(): PushState {
    return shownState(this.#state);
  }
  /** The state in its table, which also tells whether the publisher is away. */
  get phase(): PushPhase {
    return this.#state;
  }
  get publisher(): Publisher {
    return this.feed.publisher;
  }
  get plan(): EncodingPlan {
    return this.feed.plan;
  }
  /** Where the push takes its publisher's media. */
  get input(): PushFeed['input'] {
    return this.feed.input;
  }
  /** The publisher went away and has not come back: the still picture feeds the output until it does. */
  get awaitingPublisher(): boolean {
    return publisherAway(this.#state);
  }
  get lastError(): string | undefined {
    return this.#lastError;
  }
  /** Resolves once the push is running, has failed, or is being stopped. */
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
    return this.isUp && monotonicMs() - this.#upSince >= HEALTHY_RESET_MS ? 0 : this.#policy.attempt;
  }
  /** Whose fault a failure was: the destination's (refused, unreachable) or the gateway's. Undefined unless failed. */
  get errorCode(): FailureCode | undefined {
    return this.#state === 'failed' ? errorCodeFor(this.#failure ?? 'local') : undefined;
  }
  /** Counts of every link so far, and the current link's lag and output buffer. */
  get output(): LinkStats & { lagMs: number; acknowledgedAt?: number; buffer?: { state: string; levelMs: number } } {
    return {
      ...this.#links.with(this.#link?.stats),
      lagMs: this.#link?.lagMs ?? 0,
      acknowledgedAt: this.#link?.acknowledgedAt,
      buffer: this.#link?.buffer,
    };
  }
  /**
   * The publisher went away (not ended on purpose): the RTMP session is kept with the last keyframe
   * sent as a still picture and silence (or the sound being played), `standby`, until the stream is
   * published again or `graceMs` passes. False when the output was not up (still starting, or
   * ended): such a push ends with its publisher.
   */
  publisherLost(reason: string, graceMs: number): boolean {
    const state = this.#state;
    // Already on the still picture (its simulcast layer away, or its publisher lost): the sooner
    // deadline holds. The publisher lost during a layer's hold ends it after its grace; a layer
    // event of a publisher already lost never stretches that grace.
    const holding = state === 'standby' || state === 'reconnecting-away';
    if (!holding && state !== 'running' && state !== 'resuming' && state !== 'reconnecting') return false;
    const until = this.standby.until;
    if (holding && until !== undefined && until <= monotonicMs() + graceMs) return true;
    this.standby.begin(graceMs, () => {
      this.#lastError = `the publisher did not come back within ${Math.round(graceMs / 100) / 10} s`;
      this.log.info({ graceMs }, 'publisher did not come back: ending the push');
      void this.stop();
    });
    this.#lastError = `publisher lost: ${reason}`;
    this.log.info({ reason, graceMs }, 'publisher lost: holding the output with a still picture');
    if (holding) return true;
    if (state === 'resuming') {
      this.feed.keepStill(); // the still picture is still the current pipeline: it goes on
      this.#transition('standby');
      return true;
    }
    this.feed.setSource('still');
    if (state === 'running') {
      this.#transition('standby');
      this.feed.startSwitch();
    } else {
      this.#transition('reconnecting-away');
      this.writer.newSource(); // the restore opens the still picture
    }
    return true;
  }

  /**
   * The stream is published again (or its pinned layer is back): `publisher`'s live media replaces
   * the still picture; `spatial`, the simulcast layer it sends, of a new publisher.
   */
  resume(publisher: Publisher, plan: EncodingPlan, spatial?: number): void {
    if (!this.awaitingPublisher) return;
    if (spatial !== undefined) this.#pinTo(publisher, spatial);
    this.standby.end();
    this.feed.setSource('publisher', { publisher, plan });
    this.log.info('publisher back: live again');
    if (this.#state === 'standby') {
      // Transcoded video takes a while to come out of the new pipeline: the still picture goes on.
      this.#transition(this.feed.videoInFfmpeg && this.feed.current ? 'resuming' : 'running');
      this.feed.startSwitch();
    } else {
      this.#transition('reconnecting');
      this.writer.newSource(); // the restore attaches the new publisher
    }
  }

  /** Since when (monotonic ms) its encoder has not kept up, the machine out of CPU; undefined while it keeps up. */
  get behindSince(): number | undefined {
    return this.feed.current?.behindSince;
  }

  /** Audio its current encoder left out to catch up (ms). */
  get audioDiscardedMs(): number {
    return this.feed.current?.audioDiscardedMs ?? 0;
  }

  /** Whether it was shed and waits for the load to pass. */
  get isShed(): boolean {
    return this.#shed;
  }

  /**
   * Ends its output, link and encoder, to leave the machine's CPU to the other pushes: it shows
   * `reconnecting` with `reason` and starts again only when `unshed`. False when it is not running.
   */
  shed(reason: string): boolean {
    if (this.#state !== 'running') return false;
    this.#shed = true;
    this.counters.sheds++;
    this.#lose(reason, 'saturated', false);
    return true;
  }

  /** What the machine's shedder weighs of it (`sheddableSchema`). */
  sheddable(): Sheddable {
    const pipeline = this.feed.current;
    const own = pipeline !== undefined && (pipeline.sharedWith ?? 0) === 0;
    const cost = !own ? 0 : pipeline.source.transcoding ? 2 : 1;
    return {
      mediaSessionId: this.mediaSessionId,
      createdAt: new Date(this.createdAt).toISOString(),
      createdMonoMs: this.createdMonoMs,
      running: this.#state === 'running',
      shed: this.#shed,
      behindSince: this.behindSince ?? null,
      cost,
      cpuSeconds: own && pipeline.pid !== undefined ? processCpuSeconds(pipeline.pid) : 0,
    };
  }

  /** The load has passed: a shed push opens its output again (a failed attempt goes on as any restore). */
  unshed(): void {
    if (!this.#shed) return;
    this.#shed = false;
    if (!isReconnecting(this.#state)) return;
    this.log.info('the load has passed: restoring the output');
    this.#retryTimer = setTimeout(() => void this.#restore(), 0);
  }

  /** Starts in the background; `ready` tells when it is up. */
  start(): void {
    this.#run().catch((error: unknown) =>
      this.#fail(
        error instanceof Error ? error.message : String(error),
        error instanceof OpenError ? error.kind : 'local',
      ),
    );
  }

  async #run(): Promise<void> {
    if (this.feed.publisher.videoCodec) await this.feed.publisher.keyframeCached(this.config.startTimeoutMs);
    if (this.#state !== 'starting') return;
    await this.#open();
    if (this.#state !== 'starting') return;
    this.#upSince = monotonicMs();
    this.#transition('running');
    this.log.info({ size: this.writer.size, plan: this.feed.plan.video }, 'publishing to the destination');
    this.#settle();
  }

  /** Whether an attempt to open the output is still wanted. */
  get #opening(): boolean {
    return this.#state === 'starting' || isReconnecting(this.#state);
  }

  /**
   * One attempt: opens what is missing of the output, the link and the pipeline side by side,
   * starts feeding them and waits for the pipeline's first output. Throws an `OpenError`; closes
   * what it opened when it fails or is no longer wanted.
   */
  async #open(): Promise<void> {
    const first = this.#state === 'starting';
    const [linked, piped] = await Promise.allSettled([
      this.#link ? undefined : this.parts.links(isReconnecting(this.#state)),
      this.feed.current ? undefined : this.#startPipeline(),
    ]);
    this.#openingPipe = undefined;
    const link = linked.status === 'fulfilled' ? linked.value : undefined;
    const pipe = piped.status === 'fulfilled' ? piped.value : undefined;
    if (linked.status === 'rejected' || piped.status === 'rejected' || !this.#opening) {
      await Promise.all([link?.close(), pipe?.close()]);
      if (linked.status === 'rejected') throw linked.reason;
      if (piped.status === 'rejected') throw new OpenError((piped.reason as Error).message, 'local');
      return;
    }
    if (link) this.#useLink(link);
    if (pipe) this.feed.use(pipe);
    this.feed.attach(first);
    try {
      // The pipeline owns the deadline of its first output (ffmpeg_start_timeout_ms): one timer, one kind of failure.
      await this.feed.current?.output;
    } catch (error) {
      throw error instanceof OpenError ? error : new OpenError((error as Error).message, 'local');
    }
    if (!this.#opening) return;
    // A link that connects once media flows (SRT) is up when the destination took it.
    if (link?.connected) {
      try {
        await link.connected;
      } catch (error) {
        if (this.#link === link) await this.#dropLink();
        throw error;
      }
    }
    if (!this.#opening) return;
    if (!this.#link) throw new OpenError(this.#lastError ?? 'the destination connection was lost', 'unreachable');
    if (!this.feed.current) throw new OpenError(this.#lastError ?? 'ffmpeg ended', 'local');
  }

  /**
   * The attempt's pipeline: ffmpeg starts beside the link. If the attempt stops being wanted
   * (terminated, failed) while the link still connects, it is closed then, not when the link's
   * attempt ends, which can take its whole connect timeout.
   */
  async #startPipeline(): Promise<Pipeline> {
    const pipe = await this.feed.startPipeline();
    if (this.#opening) this.#openingPipe = pipe;
    else void pipe.close();
    return pipe;
  }

  /** Makes `link` the link: a new RTMP session, which starts with headers and a keyframe. */
  #useLink(link: Link): void {
    this.#link = link;
    // Audio waits for the link's first keyframe, if video is to come.
    this.writer.useLink(link.out, this.feed.hasVideo);
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

  /**
   * Output broke: the pipeline (and the link, unless kept) is ended. While up, go to `reconnecting`
   * and open what is missing again after a wait, or fail when restoring is off or exhausted. Before
   * the first start a failure fails the startup; during an attempt, the attempt reports it.
   */
  #lose(reason: string, kind: FailureKind, keepLink: boolean): void {
    if (!keepLink) void this.#dropLink();
    void this.feed.drop(); // a switch under way gives way to the restore
    if (this.#state === 'starting') return this.#fail(reason, kind);
    if (!this.isUp) return;
    this.counters.drops++;
    this.#lastError = reason;
    this.log.warn({ reason }, 'output lost');
    if (monotonicMs() - this.#upSince >= HEALTHY_RESET_MS) this.#policy.healthy();
    this.#transition(this.awaitingPublisher ? 'reconnecting-away' : 'reconnecting');
    if (!keepLink) this.feed.detach();
    // A shed push waits for the load to pass (`unshed`): a restart now would feed the overload.
    if (kind !== 'saturated') this.#scheduleAttempt(kind, reason);
  }

  /** The wait runs from the failed attempt's start: after seconds spent on a SYN nobody answered (a network cut), the next goes at once. */
  #scheduleAttempt(kind: FailureKind, reason: string, attemptStartedAt = monotonicMs()): void {
    const decision = this.#policy.next(kind, reason);
    if ('giveUp' in decision) return this.#fail(decision.giveUp, kind);
    const inMs = Math.max(0, attemptStartedAt + decision.retryInMs - monotonicMs());
    this.log.info({ attempt: this.#policy.attempt, inMs }, 'restoring the output');
    this.#retryTimer = setTimeout(() => void this.#restore(), inMs);
  }

  async #restore(startedAt = monotonicMs()): Promise<void> {
    if (!isReconnecting(this.#state)) return;
    try {
      await this.#open();
    } catch (error) {
      if (!isReconnecting(this.#state)) return;
      if (!this.#link) this.feed.detach(); // passed-through video goes on over a kept link
      void this.feed.drop();
      this.#lastError = (error as Error).message;
      this.log.warn({ reason: this.#lastError, attempt: this.#policy.attempt }, 'restore attempt failed');
      this.#scheduleAttempt(error instanceof OpenError ? error.kind : 'local', this.#lastError, startedAt);
      return;
    }
    if (!isReconnecting(this.#state)) return;
    this.#policy.restored();
    this.#upSince = monotonicMs();
    this.counters.reconnects++;
    this.#transition(this.awaitingPublisher ? 'standby' : 'running');
    this.log.info({ attempt: this.#policy.attempt }, 'output restored');
  }

  #fail(reason: string, kind: FailureKind): void {
    if (!TRANSITIONS[this.#state].includes('failed')) return;
    this.#lastError = reason;
    this.#failure = kind;
    this.#transition('failed');
    this.log.warn({ reason }, 'push failed');
    this.#settle();
    void this.#release();
  }

  /** Changes state through the table (a change it does not allow is a bug); tells the state shown when that changes. */
  #transition(next: PushPhase): void {
    if (!TRANSITIONS[this.#state].includes(next)) throw new Error(`push cannot go from ${this.#state} to ${next}`);
    const shown = this.state;
    this.#state = next;
    // A pipeline started by an attempt that is still waiting for its link is not wanted any more.
    if (!this.#opening) void this.#openingPipe?.close();
    if (this.state !== shown) this.safeEmit('state', this.state);
  }

  /** Ends it all and releases everything (a failed one stays `failed`, with `lastError`); idempotent, resolves when all is released. */
  stop(): Promise<void> {
    this.#closing ??= (async () => {
      if (TRANSITIONS[this.#state].includes('stopping')) this.#transition('stopping');
      this.#settle();
      await this.#release();
      if (this.#state === 'stopping') this.#transition('stopped');
      this.log.info({ state: this.#state }, 'push closed');
      this.safeEmit('closed');
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  #release(): Promise<void> {
    this.#releasing ??= (async () => {
      clearTimeout(this.#retryTimer);
      this.standby.end();
      this.#pin?.close();
      // The feed waits for every pipeline it started, so no ffmpeg outlives the push.
      await Promise.all([this.#dropLink(), this.feed.close(), this.audio.stop()]);
    })();
    return this.#releasing;
  }

  /** The Web Call Server shape, plus `state`, `lastError`, restore attempts and counters. Holds no secret. */
  toJSON(): PushInfo {
    return describe(this);
  }
}
