import { monotonicMs } from '../core/clock.js';
/**
 * Keyframes are requested ahead of the interval, in capture time since the last one, by at least
 * this fraction of it: the keyframe lands on a captured frame some time after the request, and the
 * gap must not exceed the interval. Capture time rather than arrival, because the stream's first
 * keyframe can reach us long after it was captured. A fifth (400 ms of 2 s): with a tenth, a
 * loaded machine's Chromium still overshot a 2 s interval by 49 ms now and then.
 */
const KEYFRAME_MIN_LEAD = 0.2;
/** The lead never exceeds this fraction of the interval, however slow the sender answers. */
const KEYFRAME_MAX_LEAD = 0.5;
/** How many recent answers to requests the lead is sized from (the slowest of them, doubled). */
const KEYFRAME_ANSWERS_KEPT = 4;
/** A request that brought no keyframe is repeated after this long (Chromium can miss one PLI). */
const KEYFRAME_RETRY_MS = 300;
/** How often `check` is called. */
export const KEYFRAME_CHECK_MS = 100;

/** What the schedule reads of the frames that came (capture times on the publisher's clock, ms). */
export interface FrameTimes {
  /** Of the latest video frame (0 before any). */
  readonly latestCaptureMs: number;
  /** Of the latest keyframe, once one came. */
  readonly latestKeyframeMs: number | undefined;
  /** Of the keyframe new sinks start from, if one is cached. */
  readonly cachedKeyframeMs: number | undefined;
}

/**
 * When to ask a sender for a keyframe so that passed-through H.264 meets the platforms' GOP advice
 * (a keyframe every `intervalMs`): whenever the last keyframe is getting old, by how slowly the
 * sender answered recently, and until one usable to start a sink from is cached. Its owner calls
 * `check` every KEYFRAME_CHECK_MS, and the schedule reads the frames' times then (the frames do not
 * call it); the clock is injected, so the schedule is tested in fake time.
 */
export class KeyframeSchedule {
  #lastRequestAt = Number.NEGATIVE_INFINITY;
  /** Capture time of the latest frame when the outstanding request was made. */
  #requestCaptureMs: number | undefined;
  /** The latest keyframe already taken into account. */
  #keyframeSeenMs: number | undefined;
  /** Capture-time delays between the latest requests and the keyframes that answered them. */
  readonly #answerDelays: number[] = [];

  constructor(
    private readonly intervalMs: number,
    /** Sends the request to the sender. */
    private readonly send: () => void,
    private readonly frames: FrameTimes,
    private readonly now: () => number = monotonicMs,
  ) {}

  /** Asks now (after a loss), unless one was just asked for; with `force`, even then. */
  request(force = false): void {
    this.#noteAnswer();
    if (force || this.now() - this.#lastRequestAt >= KEYFRAME_RETRY_MS) this.#request();
  }

  /** Asks when the cached keyframe is due to be replaced, or while none is cached. */
  check(): void {
    this.#noteAnswer();
    const due = this.intervalMs - this.#leadMs();
    const keyframeMs = this.frames.cachedKeyframeMs;
    const age = keyframeMs === undefined ? Infinity : this.frames.latestCaptureMs - keyframeMs;
    if (age >= due && this.now() - this.#lastRequestAt >= KEYFRAME_RETRY_MS) this.#request();
  }

  /** A keyframe that came since the last look answers the outstanding request: how long it took is kept. */
  #noteAnswer(): void {
    const keyframeMs = this.frames.latestKeyframeMs;
    if (keyframeMs === undefined || keyframeMs === this.#keyframeSeenMs) return;
    this.#keyframeSeenMs = keyframeMs;
    if (this.#requestCaptureMs === undefined) return;
    this.#answerDelays.push(Math.max(0, keyframeMs - this.#requestCaptureMs));
    if (this.#answerDelays.length > KEYFRAME_ANSWERS_KEPT) this.#answerDelays.shift();
    this.#requestCaptureMs = undefined;
  }

  #request(): void {
    this.#lastRequestAt = this.now();
    this.#requestCaptureMs ??= this.frames.latestCaptureMs;
    this.send();
  }

  /**
   * How long before the interval is up a keyframe is asked for: twice the slowest recent answer
   * plus one check period, between KEYFRAME_MIN_LEAD and KEYFRAME_MAX_LEAD of the interval. A
   * sender that answers in 250 ms (a loaded machine) still keeps every gap within the interval.
   */
  #leadMs(): number {
    const slowest = Math.max(0, ...this.#answerDelays);
    const lead = 2 * slowest + KEYFRAME_CHECK_MS;
    return Math.min(this.intervalMs * KEYFRAME_MAX_LEAD, Math.max(this.intervalMs * KEYFRAME_MIN_LEAD, lead));
  }
}
