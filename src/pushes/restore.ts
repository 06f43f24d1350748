import { monotonicMs } from '../core/clock.js';
import type { FailureKind } from '../links/failures.js';

/** How a push restores its output after a drop (Web Call Server's `rtmp_push_restore*`). */
export interface RestoreSettings {
  enabled: boolean;
  /** Attempts per outage; 0 is unlimited. */
  attempts: number;
  /** Wait before the first attempt; later waits grow from it. */
  intervalMs: number;
}

/** Waits grow by this factor per attempt in an outage… */
const GROWTH = 1.5;
/**
 * …up to this (or the interval, if longer). Short on purpose: an attempt costs a SYN or one RTMP
 * handshake, and the output is back within this long of the server or the network returning.
 */
const MAX_WAIT_MS = 2000;
/** Each wait is lengthened by up to this fraction, so pushes do not retry in step. */
const JITTER = 0.25;
/**
 * "Already publishing" is asked again this soon within the wait an attempt would have had: the
 * server lets go of our session from before the drop at a moment nobody can tell (when its own
 * retransmission reaches our kernel, which resets it), and the name is taken at the next attempt.
 * These quick asks are shown as attempts but not counted against `rtmp_push_restore_attempts`.
 */
const BUSY_ASK_MS = 500;
/** Output healthy for this long forgets the attempts of earlier outages. */
export const HEALTHY_RESET_MS = 60_000;
export type RestoreDecision = { retryInMs: number } | { giveUp: string };

/**
 * The attempts of one push: how long to wait before the next, and when to give up. One
 * instance lives as long as its push; `healthy()` is called when output has run long enough
 * to start counting afresh.
 */
export class RestorePolicy {
  /** Attempts made in the current outage, quick asks included (what `find` shows). */
  attempt = 0;
  /** Those counted against `attempts` and for the growing waits. */
  #counted = 0;
  #previousKind: FailureKind | undefined;
  /** Until when "already publishing" is asked again without counting an attempt. */
  #busyUntil = 0;

  constructor(
    private readonly settings: RestoreSettings,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = monotonicMs,
  ) {}

  /** After a drop or a failed attempt: wait this long and try again, or give up (and why). */
  next(kind: FailureKind, reason: string): RestoreDecision {
    if (!this.settings.enabled) return { giveUp: reason };
    const quickAsk = (): number => Math.round(BUSY_ASK_MS * (1 + JITTER * this.random()));
    if (kind === 'busy' && this.#previousKind === 'busy' && this.now() < this.#busyUntil) {
      this.attempt++;
      return { retryInMs: quickAsk() };
    }
    if (kind === 'rejected' && this.#previousKind === 'rejected') return { giveUp: reason };
    if (kind === 'storage') return { giveUp: reason };
    if (this.settings.attempts > 0 && this.#counted >= this.settings.attempts) {
      return { giveUp: `${reason} (after ${this.#counted} restore attempt${this.#counted === 1 ? '' : 's'})` };
    }
    this.#previousKind = kind;
    this.attempt++;
    this.#counted++;
    const { intervalMs } = this.settings;
    const wait = Math.min(Math.max(intervalMs, MAX_WAIT_MS), intervalMs * GROWTH ** (this.#counted - 1));
    const retryInMs = Math.round(wait * (1 + JITTER * this.random()));
    if (kind !== 'busy') return { retryInMs };
    this.#busyUntil = this.now() + retryInMs;
    return { retryInMs: Math.min(retryInMs, quickAsk()) };
  }

  /** Output is back: the next outage starts with a short wait only once it has stayed up. */
  restored(): void {
    this.#previousKind = undefined;
  }

  healthy(): void {
    this.attempt = 0;
    this.#counted = 0;
    this.#previousKind = undefined;
  }
}
