import { processCpuSeconds } from '../core/load.js';
import { monotonicMs, wallClockMs } from '../core/clock.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { TypedEmitter } from '../core/events.js';
import type { Publisher } from '../publishers/publisher.js';
import type { Destination } from '../links/destination.js';
import type { EncodingPlan } from '../pipeline/encoding.js';
import { passthroughMetadata, TagWriter } from './tag-writer.js';
import { AudioCommands } from '../pipeline/audio-commands.js';
import type { PushInfo, Sheddable } from './info.js';
import { PushFeed } from './feed.js';
import type { PushConfig, PushOptions, PushParts } from './settings.js';
import { isActive, isReconnecting, isUp, publisherAway, type PushPhase, type PushState } from './states.js';
import { Standby } from './standby.js';
import { describe, type Twin } from './description.js';
import { IngestHealth, type Health } from './health.js';
import { PLATFORMS } from '../links/platforms.js';
import type { FailureCode } from '../links/failures.js';
import type { LinkSlotStats } from './link-slot.js';
import { LayerPin } from './layer-pin.js';
import { PushLife } from './life.js';

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
 * One (stream, destination) pair, as the rest of the gateway sees it: it owns the parts of its
 * output and tells what they do. The output has two halves that fail separately, each opened by a
 * factory it is given: the link (`rtmp-link.ts`: the RTMP session) and the pipeline
 * (`pipeline.ts`: ffmpeg and its input). The publisher's H.264 frames are passed through by the
 * `TagWriter` (`tag-writer.ts`); its audio (and video to transcode) goes to the pipeline, whose tags
 * the writer places on the same timeline (`PushTimeline`).
 *
 * Its life (`PushLife`, `life.ts`) holds the state table and keeps the output up: the restore loop,
 * one `Attempt` (`attempt.ts`) at a time, and the active link (`LinkSlot`, `link-slot.ts`); every
 * state change is made there. The `PushFeed` owns what feeds the output (the publisher or, while it
 * is away, the still picture; the pipelines; the switch between them); `Standby` holds the grace
 * period; the `LayerPin` holds standby while its simulcast layer is away.
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
  readonly audio: AudioCommands;
  /** What feeds the output: its source, its pipelines, the publisher's media routed to them. */
  readonly feed: PushFeed;
  /** Its state table and the loop that keeps its output up. */
  readonly #life: PushLife;
  #closing: Promise<void> | undefined;
  /** Ended to leave the machine's CPU to the others (`shed`): it waits, reconnecting, for `unshed`. */
  #shed = false;
  /** Its simulcast layer, held to: exactly (`layerPolicy: "pin"`), or it and those below. */
  #pin: LayerPin | undefined;
  /** Of a push with `backupUrl`: the other connection (the primary's backup, or the backup's primary). */
  twin: Twin | undefined;

  constructor(
    publisher: Publisher,
    readonly destination: Destination,
    plan: EncodingPlan,
    readonly request: PushOptions,
    readonly config: PushConfig,
    parts: PushParts,
    readonly log: Logger,
  ) {
    super((event, error) => log.error({ err: error, event }, 'push listener failed'));
    this.mediaSessionId = request.id ?? randomUUID();
    this.health = new IngestHealth(
      PLATFORMS.find((p) => p.name === request.platform),
      (health) => {
        log.info({ status: health.status, issues: health.issues }, 'ingest health');
        this.safeEmit('health', health);
      },
      () => this.feed.hasVideo,
    );
    this.writer = new TagWriter({
      origin: request.origin,
      health: this.health,
      sendMetadata: config.sendMetadata,
      audioSampleRate: config.encoding.audioSampleRate,
      metadata: (size, codec) =>
        passthroughMetadata(
          size,
          (this.feed.plan.video === 'transcode' && this.feed.plan.fps) || this.feed.publisher.frameRate,
          {
            sampleRate: config.encoding.audioSampleRate,
            bitrateKbps: this.feed.plan.audioBitrateKbps ?? config.encoding.audioBitrateKbps,
          },
          codec,
        ),
      captionMode: request.captions || undefined,
      onBadSps: () => log.warn('an SPS whose picture size cannot be read: the output size is not known'),
      onResizeSent: (from, to) =>
        log.warn(
          { from: `${from.width}x${from.height}`, to: `${to.width}x${to.height}` },
          'the picture size sent changed mid-stream',
        ),
    });
    this.audio = new AudioCommands(
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
      onLost: (reason, kind) => this.#life.lose(reason, kind, true),
      onSwitched: () => this.#life.switched(),
    });
    this.#life = new PushLife({
      feed: this.feed,
      writer: this.writer,
      links: parts.links,
      standby: this.standby,
      config,
      counters: this.counters,
      log,
      onState: (state) => this.safeEmit('state', state),
      stop: () => void this.stop(),
      release: () => this.#release(),
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
    return this.#life.state;
  }
  /** The state in its table, which also tells whether the publisher is away. */
  get phase(): PushPhase {
    return this.#life.phase;
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
    return publisherAway(this.#life.phase);
  }
  get lastError(): string | undefined {
    return this.#life.lastError;
  }
  /** Resolves once the push is running, has failed, or is being stopped. */
  get ready(): Promise<void> {
    return this.#life.ready;
  }
  /** Starting, up or reconnecting: audio commands apply. */
  get isActive(): boolean {
    return isActive(this.#life.phase);
  }
  get isUp(): boolean {
    return isUp(this.#life.phase);
  }
  /** Attempts of the current outage, 0 once output has been up for a minute. */
  get reconnectAttempt(): number {
    return this.#life.reconnectAttempt;
  }
  /** Whose fault a failure was: the destination's (refused, unreachable) or the gateway's. Undefined unless failed. */
  get errorCode(): FailureCode | undefined {
    return this.#life.errorCode;
  }
  /** Counts of every link so far, and the active link's lag and send buffer. */
  get output(): LinkSlotStats {
    return this.#life.slot.stats;
  }

  /** Starts in the background; `ready` tells when it is up. */
  start(): void {
    this.#life.start();
  }

  /**
   * The publisher went away (not ended on purpose): the output is held with the still picture until
   * the stream is published again or `graceMs` passes (`PushLife.publisherLost`). False when the
   * output was not up: such a push ends with its publisher.
   */
  publisherLost(reason: string, graceMs: number): boolean {
    return this.#life.publisherLost(reason, graceMs);
  }

  /**
   * The stream is published again (or its pinned layer is back): `publisher`'s live media replaces
   * the still picture; `spatial`, the simulcast layer it sends, of a new publisher.
   */
  resume(publisher: Publisher, plan: EncodingPlan, spatial?: number): void {
    if (!this.awaitingPublisher) return;
    if (spatial !== undefined) this.#pinTo(publisher, spatial);
    this.#life.resume(publisher, plan);
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
    if (this.#life.phase !== 'running') return false;
    this.#shed = true;
    this.counters.sheds++;
    this.#life.lose(reason, 'saturated', false);
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
      running: this.#life.phase === 'running',
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
    if (!isReconnecting(this.#life.phase)) return;
    this.log.info('the load has passed: restoring the output');
    this.#life.restoreNow();
  }

  /** Ends it all and releases everything (a failed one stays `failed`, with `lastError`); idempotent, resolves when all is released. */
  stop(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#life.end();
      this.log.info({ state: this.#life.phase }, 'push closed');
      this.safeEmit('closed');
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  /** Releases its parts but the link, which its life drops; its life calls this once. */
  async #release(): Promise<void> {
    this.standby.end();
    this.#pin?.close();
    // The feed waits for every pipeline it started, so no ffmpeg outlives the push.
    await Promise.all([this.feed.close(), this.audio.stop()]);
  }

  /** The Web Call Server shape, plus `state`, `lastError`, restore attempts and counters. Holds no secret. */
  toJSON(): PushInfo {
    return describe(this);
  }
}
