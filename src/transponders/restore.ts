import { GatewayError } from '../errors.js';
import { RtmpError } from '../rtmp/errors.js';
import type { FailureCode } from './info.js';

/** How a transponder restores its output after a drop (Web Call Server's `rtmp_push_restore*`). */
export interface RestoreSettings {
  enabled: boolean;
  /** Attempts per outage; 0 is unlimited. */
  attempts: number;
  /** Wait before the first attempt; later waits grow from it. */
  intervalMs: number;
}

/**
 * Why an attempt failed:
 * - `unreachable`: nothing answered or the connection broke (server down, network cut);
 * - `busy`: the server still holds a stream of that name ("already publishing"): usually our own
 *   session from before the drop, which it lets go once the old connection's end reaches it;
 * - `rejected`: the server refused the publish otherwise (bad key or application): tried once more,
 *   then the transponder fails with the server's reason;
 * - `local`: ffmpeg or the audio mixer could not start here;
 * - `storage`: a recording's disk is (nearly) full: not tried again;
 * - `slow`: ffmpeg started but wrote nothing within `ffmpeg_start_timeout_ms`: the machine did not
 *   keep up (saturated), so a startup that fails so is worth trying again later.
 */
export type FailureKind = 'unreachable' | 'busy' | 'rejected' | 'local' | 'slow' | 'storage';

/** Waits grow by this factor per attempt in an outage… */
const GROWTH = 1.5;
/**
 * …up to this (or the interval, if longer). Short on purpose: an attempt costs a SYN or one RTMP
 * handshake, and the output is back within this long of the server or the network returning.
 */
const MAX_WAIT_MS = 2000;
/** Each wait is lengthened by up to this fraction, so transponders do not retry in step. */
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
/**
 * While reconnecting, a TCP connection not made within this long is given up and tried afresh:
 * the kernel's own SYN retries back off to 3 s, 7 s and more, which would leave a returned network
 * unused for seconds.
 */
export const RECONNECT_SOCKET_TIMEOUT_MS = 2000;

/** Whose fault a failure of `kind` was. */
export function errorCodeFor(kind: FailureKind): FailureCode {
  if (kind === 'rejected' || kind === 'busy') return 'destination_refused';
  if (kind === 'slow') return 'unavailable';
  if (kind === 'storage') return 'insufficient_storage';
  return kind === 'unreachable' ? 'destination_unreachable' : 'internal';
}

/** A failed attempt to open an output (its link or its pipeline), and what kind of failure it was. */
export class OpenError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
  ) {
    super(message);
  }
}

export function classifyFailure(error: unknown): FailureKind {
  // The destination policy refused the address a reconnect's lookup gave.
  if (error instanceof GatewayError) return 'rejected';
  if (!(error instanceof RtmpError) || error.code === undefined) return 'unreachable';
  const text = `${error.code} ${error.description ?? ''}`;
  return /already|in use/i.test(text) ? 'busy' : 'rejected';
}

export type RestoreDecision = { retryInMs: number } | { giveUp: string };

/**
 * The attempts of one transponder: how long to wait before the next, and when to give up. One
 * instance lives as long as its transponder; `healthy()` is called when output has run long enough
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
    private readonly now: () => number = Date.now,
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
