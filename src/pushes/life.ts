import { monotonicMs } from '../core/clock.js';
import type { Logger } from 'pino';
import type { Publisher } from '../publishers/publisher.js';
import type { EncodingPlan } from '../pipeline/encoding.js';
import { errorCodeFor, type FailureCode, type FailureKind, OpenError } from '../links/failures.js';
import type { LinkFactory } from '../links/link.js';
import { Attempt, type AttemptParts } from './attempt.js';
import type { PushFeed } from './feed.js';
import { LinkSlot } from './link-slot.js';
import { HEALTHY_RESET_MS, RestorePolicy } from './restore.js';
import type { PushConfig } from './settings.js';
import type { Standby } from './standby.js';
import {
  isReconnecting,
  isUp,
  publisherAway,
  shownState,
  TRANSITIONS,
  type PushPhase,
  type PushState,
} from './states.js';
import type { TagWriter } from './tag-writer.js';

/** What a push's life drives: the push's parts, and what it tells the push. */
export interface LifeParts {
  feed: PushFeed;
  writer: TagWriter;
  links: LinkFactory;
  standby: Standby;
  config: Pick<PushConfig, 'restore' | 'startTimeoutMs'>;
  /** The push's counters, of which the life counts drops and restores. */
  counters: { drops: number; reconnects: number };
  log: Logger;
  /** The state shown changed. */
  onState(state: PushState): void;
  /** Ends the push: its publisher did not come back within the grace period. */
  stop(): void;
  /** Releases the push's parts but the link (the life drops that); resolves once they are closed. */
  release(): Promise<void>;
}

/**
 * A push's life, mediamtx's `run()` around `runOnce()`: its state table, and the loop that keeps
 * its output up, one `Attempt` at a time. Its output has two halves that fail separately: the link
 * (the `LinkSlot` it keeps) and the pipeline (the feed's). When either breaks while up, the push
 * goes to `reconnecting` (`lose`) and a new attempt opens what is missing after a wait (`#restore`,
 * the `RestorePolicy` deciding the wait and when to give up); each new link starts with codec
 * headers and a keyframe, its timestamps going on. While the publisher is away, it holds the
 * output with the still picture (`standby`) for a grace period. Every state change is made here,
 * and why it last failed is kept (`lastError`).
 */
export class PushLife {
  /** The active link. */
  readonly slot: LinkSlot;
  #phase: PushPhase = 'starting';
  #lastError: string | undefined;
  #failure: FailureKind | undefined;
  readonly #policy: RestorePolicy;
  #retryTimer: NodeJS.Timeout | undefined;
  #upSince = 0; // when output was last restored (or first started)
  readonly #attemptParts: AttemptParts;
  /** The latest attempt: one that is no longer wanted closes the pipeline it waits with. */
  #attempt: Attempt | undefined;
  readonly #settled: Promise<void>;
  #settle!: () => void;
  #releasing: Promise<void> | undefined;

  constructor(private readonly parts: LifeParts) {
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
    this.#policy = new RestorePolicy(parts.config.restore);
    this.slot = new LinkSlot(parts.writer, {
      videoToCome: () => parts.feed.hasVideo,
      onLost: (reason, kind) => this.lose(reason, kind, false),
    });
    this.#attemptParts = {
      slot: this.slot,
      feed: parts.feed,
      links: parts.links,
      wanted: () => this.#opening,
      lastError: () => this.#lastError,
    };
  }

  /** The state in its table, which also tells whether the publisher is away. */
  get phase(): PushPhase {
    return this.#phase;
  }
  /** The state it shows. */
  get state(): PushState {
    return shownState(this.#phase);
  }
  get lastError(): string | undefined {
    return this.#lastError;
  }
  /** Resolves once the push is running, has failed, or is being stopped. */
  get ready(): Promise<void> {
    return this.#settled;
  }
  /** Attempts of the current outage, 0 once output has been up for a minute. */
  get reconnectAttempt(): number {
    return isUp(this.#phase) && monotonicMs() - this.#upSince >= HEALTHY_RESET_MS ? 0 : this.#policy.attempt;
  }
  /** Whose fault a failure was: the destination's (refused, unreachable) or the gateway's. Undefined unless failed. */
  get errorCode(): FailureCode | undefined {
    return this.#phase === 'failed' ? errorCodeFor(this.#failure ?? 'local') : undefined;
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
    const { feed, writer, config, log } = this.parts;
    if (feed.publisher.videoCodec) await feed.publisher.keyframeCached(config.startTimeoutMs);
    if (this.#phase !== 'starting') return;
    await this.#open(true);
    if (this.#phase !== 'starting') return;
    this.#upSince = monotonicMs();
    this.#transition('running');
    log.info({ size: writer.size, plan: feed.plan.video }, 'publishing to the destination');
    this.#settle();
  }

  /** Whether an attempt to open the output is still wanted. */
  get #opening(): boolean {
    return this.#phase === 'starting' || isReconnecting(this.#phase);
  }

  /** One attempt: `first` at the start, else a restore. */
  #open(first: boolean): Promise<void> {
    this.#attempt = new Attempt(this.#attemptParts, first);
    return this.#attempt.run();
  }

  /**
   * The publisher went away (not ended on purpose): the RTMP session is kept with the last keyframe
   * sent as a still picture and silence (or the sound being played), `standby`, until the stream is
   * published again or `graceMs` passes. False when the output was not up (still starting, or
   * ended): such a push ends with its publisher.
   */
  publisherLost(reason: string, graceMs: number): boolean {
    const { standby, feed, writer, log } = this.parts;
    const state = this.#phase;
    // Already on the still picture (its simulcast layer away, or its publisher lost): the sooner
    // deadline holds. The publisher lost during a layer's hold ends it after its grace; a layer
    // event of a publisher already lost never stretches that grace.
    const holding = state === 'standby' || state === 'reconnecting-away';
    if (!holding && state !== 'running' && state !== 'resuming' && state !== 'reconnecting') return false;
    const until = standby.until;
    if (holding && until !== undefined && until <= monotonicMs() + graceMs) return true;
    standby.begin(graceMs, () => {
      this.#lastError = `the publisher did not come back within ${Math.round(graceMs / 100) / 10} s`;
      log.info({ graceMs }, 'publisher did not come back: ending the push');
      this.parts.stop();
    });
    this.#lastError = `publisher lost: ${reason}`;
    log.info({ reason, graceMs }, 'publisher lost: holding the output with a still picture');
    if (holding) return true;
    if (state === 'resuming') {
      feed.keepStill(); // the still picture is still the current pipeline: it goes on
      this.#transition('standby');
      return true;
    }
    feed.setSource('still');
    if (state === 'running') {
      this.#transition('standby');
      feed.startSwitch();
    } else {
      this.#transition('reconnecting-away');
      writer.newSource(); // the restore opens the still picture
    }
    return true;
  }

  /** The stream is published again: `publisher`'s live media replaces the still picture. */
  resume(publisher: Publisher, plan: EncodingPlan): void {
    const { standby, feed, writer, log } = this.parts;
    if (!publisherAway(this.#phase)) return;
    const codecsBefore = feed.videoFourCcs.join();
    standby.end();
    feed.setSource('publisher', { publisher, plan });
    log.info('publisher back: live again');
    if (this.#phase === 'standby' && feed.videoFourCcs.join() !== codecsBefore) {
      // Back in another codec (H.264 and AV1 pass through as they are): a receiver takes a codec
      // for a connection, so a new one is made.
      this.#transition('running');
      this.lose('the stream came back in another video codec: a new connection for it', 'local', false);
    } else if (this.#phase === 'standby') {
      // Transcoded video takes a while to come out of the new pipeline: the still picture goes on.
      this.#transition(feed.videoInFfmpeg && feed.current ? 'resuming' : 'running');
      feed.startSwitch();
    } else {
      this.#transition('reconnecting');
      writer.newSource(); // the restore attaches the new publisher
    }
  }

  /** The feed's switch is complete: a push resuming is live again. */
  switched(): void {
    if (this.#phase === 'resuming') this.#transition('running');
  }

  /**
   * Output broke: the pipeline (and the link, unless kept) is ended. While up, go to `reconnecting`
   * and open what is missing again after a wait, or fail when restoring is off or exhausted. Before
   * the first start a failure fails the startup; during an attempt, the attempt reports it. A push
   * shed (`saturated`) waits for `restoreNow`.
   */
  lose(reason: string, kind: FailureKind, keepLink: boolean): void {
    const { feed, counters, log } = this.parts;
    if (!keepLink) void this.slot.drop();
    void feed.drop(); // a switch under way gives way to the restore
    if (this.#phase === 'starting') return this.#fail(reason, kind);
    if (!isUp(this.#phase)) return;
    counters.drops++;
    this.#lastError = reason;
    log.warn({ reason }, 'output lost');
    if (monotonicMs() - this.#upSince >= HEALTHY_RESET_MS) this.#policy.healthy();
    this.#transition(publisherAway(this.#phase) ? 'reconnecting-away' : 'reconnecting');
    if (!keepLink) feed.detach();
    // A shed push waits for the load to pass: a restart now would feed the overload.
    if (kind !== 'saturated') this.#scheduleAttempt(kind, reason);
  }

  /** The next attempt, now (a shed push whose load has passed); a failed one goes on as any restore. */
  restoreNow(): void {
    this.#retryTimer = setTimeout(() => void this.#restore(), 0);
  }

  /** The wait runs from the failed attempt's start: after seconds spent on a SYN nobody answered (a network cut), the next goes at once. */
  #scheduleAttempt(kind: FailureKind, reason: string, attemptStartedAt = monotonicMs()): void {
    const decision = this.#policy.next(kind, reason);
    if ('giveUp' in decision) return this.#fail(decision.giveUp, kind);
    const inMs = Math.max(0, attemptStartedAt + decision.retryInMs - monotonicMs());
    this.parts.log.info({ attempt: this.#policy.attempt, inMs }, 'restoring the output');
    this.#retryTimer = setTimeout(() => void this.#restore(), inMs);
  }

  async #restore(startedAt = monotonicMs()): Promise<void> {
    const { feed, counters, log } = this.parts;
    if (!isReconnecting(this.#phase)) return;
    try {
      await this.#open(false);
    } catch (error) {
      if (!isReconnecting(this.#phase)) return;
      if (!this.slot.link) feed.detach(); // passed-through video goes on over a kept link
      void feed.drop();
      this.#lastError = (error as Error).message;
      log.warn({ reason: this.#lastError, attempt: this.#policy.attempt }, 'restore attempt failed');
      this.#scheduleAttempt(error instanceof OpenError ? error.kind : 'local', this.#lastError, startedAt);
      return;
    }
    if (!isReconnecting(this.#phase)) return;
    this.#policy.restored();
    this.#upSince = monotonicMs();
    counters.reconnects++;
    this.#transition(publisherAway(this.#phase) ? 'standby' : 'running');
    log.info({ attempt: this.#policy.attempt }, 'output restored');
  }

  #fail(reason: string, kind: FailureKind): void {
    if (!TRANSITIONS[this.#phase].includes('failed')) return;
    this.#lastError = reason;
    this.#failure = kind;
    this.#transition('failed');
    this.parts.log.warn({ reason }, 'push failed');
    this.#settle();
    void this.#release();
  }

  /** Changes state through the table (a change it does not allow is a bug); tells the state shown when that changes. */
  #transition(next: PushPhase): void {
    if (!TRANSITIONS[this.#phase].includes(next)) throw new Error(`push cannot go from ${this.#phase} to ${next}`);
    const shown = this.state;
    this.#phase = next;
    // A pipeline started by an attempt that is still waiting for its link is not wanted any more.
    if (!this.#opening) this.#attempt?.abandon();
    if (this.state !== shown) this.parts.onState(this.state);
  }

  /** Ends it all (a failed one stays `failed`, with `lastError`); call once. Resolves when all is released. */
  async end(): Promise<void> {
    if (TRANSITIONS[this.#phase].includes('stopping')) this.#transition('stopping');
    this.#settle();
    await this.#release();
    if (this.#phase === 'stopping') this.#transition('stopped');
  }

  #release(): Promise<void> {
    this.#releasing ??= (async () => {
      clearTimeout(this.#retryTimer);
      await Promise.all([this.slot.drop(), this.parts.release()]);
    })();
    return this.#releasing;
  }
}
