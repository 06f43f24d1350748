/**
 * The limits of a track's timeline, named once: the mapping from RTP time to the gateway's clock
 * (`ClockMapping`) and the audio timeline that places packets by it (`AudioTimeline`) read the same.
 */
export const TIMELINE_LIMITS = {
  /**
   * A step of the RTP time more than this far back, or one forward that would place a packet's
   * capture this far after its own arrival, is a new timeline (the sender restarted or leapt). The
   * audio timeline places a packet up to this far ahead of now, so whatever the mapping keeps on
   * its timeline is placeable (ms).
   */
  discontinuityMs: 5000,
  /**
   * How far a sender's clock rate is followed from ours: 1 % (real sound cards are within a few
   * hundred ppm; 1 % is a sender off by 14 min a day). The audio timeline stretches or squeezes its
   * sound by as much at most, in steps too small to hear.
   */
  maxSkew: 0.01,
} as const;

/** Arrival time (ms) over which a track's least-delayed packet is taken as one point of its rate. */
const WINDOW_MS = 1000;
/** Points of the fit: the rate is measured over the last 30 s of arrivals. */
const FIT_POINTS = 30;
/** Points before the first fit: until then the mapping runs at the nominal rate. */
const FIRST_FIT_POINTS = 5;
/** A point this far above the first fit's line is a delayed window (a busy thread), left out of the second (ms). */
const DELAYED_POINT_MS = 10;
/** The mapping closes the distance to the fitted line over this much of the sender's time (ms). */
const PULL_MS = 10_000;

/** Why a track's mapping started again: said once per discontinuity, with its size. */
export interface Discontinuity {
  /** How far the RTP time jumped from the latest packet's, less the time that passed between their arrivals (ms). */
  jumpMs: number;
}

/** A first packet that lowers the least delay seen by more than this is part of a late burst (ms). */
const BURST_STEP_MS = 5;
/** The search ends once this much of the sender's time (ms) has come on time after the burst. */
const ON_TIME_MS = 60;

/**
 * A track's start, found from its least-delayed first packets rather than its very first: a thread
 * busy when a track's first packets came reads them late and at once, and a mapping anchored on the
 * first of them would hold the track that late for minutes (it follows the arrivals at 1 % at most).
 * Told each packet's timestamp and arrival while its packets wait, it ends the search once packets
 * have come on time for `ON_TIME_MS` of the sender's time since the last that lowered the least delay
 * seen by more than `BURST_STEP_MS` (the burst is over, and a hiccup of the reader within it shorter
 * than that does not end it), or once `settleMs` of arrivals have passed.
 */
export class FirstPackets {
  readonly #timestamp: number;
  readonly #arrivalMs: number;
  /** Where the first packet's timestamp is on the gateway's clock: the least delay seen so far. */
  #anchorMs: number;
  /** The step of RTP time from the first packet (ticks) of the last packet of the burst, and the furthest so far. */
  #burstEnd = 0;
  #furthest = 0;
  readonly #onTimeTicks: number;

  constructor(
    readonly clockRate: number,
    timestamp: number,
    arrivalMs: number,
    private readonly settleMs: number,
  ) {
    this.#timestamp = timestamp >>> 0;
    this.#arrivalMs = this.#anchorMs = arrivalMs;
    this.#onTimeTicks = (ON_TIME_MS * clockRate) / 1000;
  }

  /** The first packet's timestamp, and where the least-delayed packets put it. */
  get anchor(): { timestamp: number; atMs: number; arrivalMs: number } {
    return { timestamp: this.#timestamp, atMs: this.#anchorMs, arrivalMs: this.#arrivalMs };
  }

  /** A later packet of the track: whether the search is over. */
  add(timestamp: number, arrivalMs: number): boolean {
    const passedMs = arrivalMs - this.#arrivalMs;
    if (passedMs >= this.settleMs) return true;
    const step = ((timestamp >>> 0) - this.#timestamp) | 0;
    const elapsedMs = (step * 1000) / this.clockRate;
    // A leap is a new timeline, the mapping's to find: it says nothing of the start.
    if (Math.abs(elapsedMs - passedMs) > TIMELINE_LIMITS.discontinuityMs) return false;
    const atMs = arrivalMs - elapsedMs;
    if (atMs < this.#anchorMs - BURST_STEP_MS) this.#burstEnd = step;
    this.#anchorMs = Math.min(this.#anchorMs, atMs);
    this.#furthest = Math.max(this.#furthest, step);
    return this.#furthest - this.#burstEnd >= this.#onTimeTicks;
  }
}

/** A window's least-delayed packet: its extended RTP time (ticks) and its arrival (ms). */
interface Point {
  extended: number;
  arrivalMs: number;
}

/**
 * Maps a track's RTP timestamps to capture times on the gateway's monotonic clock (ms), following
 * the sender's clock at its real rate, both ways: a sound card runs tens to hundreds of ppm off the
 * system clock that stamps the same sender's video, so each track is held to the arrivals of its own
 * least-delayed packets, and two tracks of one sender stay together by each staying on its arrivals.
 *
 * - Unwrapping: each timestamp is taken against the previous packet's, with the count of 2^32
 *   wraps that lands it nearest the arrival time that passed: the field wraps every 13 h 15 min at
 *   90 kHz, and a track idle for longer comes back where its clock says, not 13 h in the past.
 * - Rate: every `WINDOW_MS` of arrivals the window's least-delayed packet is a point; a line is
 *   fitted through the last `FIT_POINTS` (as GStreamer's rtpjitterbuffer estimates skew from the
 *   least-delayed packets, not from each one), once more without the points a busy thread delayed.
 *   The mapping then runs at the line's rate, bent to close its distance to the line over
 *   `PULL_MS`, never more than `TIMELINE_LIMITS.maxSkew` from the nominal rate. It is continuous:
 *   a packet is never moved back or forward by a step, only the rate changes.
 * - Discontinuities: a step back of more than `TIMELINE_LIMITS.discontinuityMs`, or one forward
 *   that would put a capture that far after its arrival (an encoder restarted, a new SSRC, a
 *   sender's clock leaping), is a new timeline: it goes on from the previous packet's time plus the
 *   time that passed between their arrivals, and `onDiscontinuity` is told. A large step forward
 *   that lands in the past is not one: packets lost while the gateway did not get the CPU to read
 *   them come back so, and the time they say is the truth, whatever late moment they were read at.
 */
export class ClockMapping {
  /** The previous packet's RTP field, its extended time (ticks) and its arrival (ms). */
  #lastTimestamp: number;
  #lastExtended: number;
  #lastArrivalMs: number;
  /** The mapping: `#anchorExtended` is at `#anchorMs`, and each tick after it `#msPerTick`. */
  #anchorExtended: number;
  #anchorMs: number;
  #msPerTick: number;
  readonly #nominalMsPerTick: number;
  /** The current window: its start (arrival ms) and its least-delayed packet so far. */
  #windowStart: number;
  #least: (Point & { delayMs: number }) | undefined;
  readonly #points: Point[] = [];

  constructor(
    readonly clockRate: number,
    anchorTimestamp: number,
    anchorMs: number,
    arrivalMs = anchorMs,
    private readonly onDiscontinuity?: (discontinuity: Discontinuity) => void,
    /**
     * Whether to follow the sender's rate on its arrivals: false for a stream the gateway makes
     * itself (a mixer's), whose RTP time is the gateway's own clock already.
     */
    private readonly followArrivals = true,
  ) {
    this.#lastTimestamp = anchorTimestamp >>> 0;
    this.#lastExtended = this.#anchorExtended = this.#lastTimestamp;
    this.#anchorMs = anchorMs;
    this.#lastArrivalMs = arrivalMs;
    this.#windowStart = arrivalMs;
    this.#msPerTick = this.#nominalMsPerTick = 1000 / clockRate;
  }

  /** The sender's rate against ours, as measured: above 1 for a clock that runs fast. */
  get rate(): number {
    return this.#nominalMsPerTick / this.#msPerTick;
  }

  /** A timestamp's capture time, unwrapped against the latest packet's; changes nothing. */
  captureMs(timestamp: number): number {
    return this.#toMs(this.#lastExtended + this.#step(timestamp));
  }

  /** A packet that arrived at `arrivalMs`: its capture time, the mapping following it. */
  next(timestamp: number, arrivalMs: number): number {
    const passedMs = Math.max(0, arrivalMs - this.#lastArrivalMs);
    const extended = this.#extend(timestamp, passedMs);
    const stepMs = (extended - this.#lastExtended) * this.#msPerTick;
    const limit = TIMELINE_LIMITS.discontinuityMs;
    if (stepMs < -limit || this.#toMs(extended) - arrivalMs > limit) {
      // A new timeline: this packet goes where the time that passed puts it.
      const at = this.#toMs(this.#lastExtended) + passedMs;
      this.#lastExtended += Math.round(passedMs / this.#msPerTick);
      this.#anchorExtended = this.#lastExtended;
      this.#anchorMs = at;
      this.#lastTimestamp = timestamp >>> 0;
      this.#lastArrivalMs = arrivalMs;
      // The points were on the old timeline: the rate found so far is kept, measured afresh.
      this.#points.length = 0;
      this.#least = undefined;
      this.#windowStart = arrivalMs;
      this.onDiscontinuity?.({ jumpMs: Math.round(stepMs - passedMs) });
      return at;
    }
    if (extended > this.#lastExtended) {
      // Only moving forward moves the reference: a late packet (a retransmission) is placed, not followed.
      this.#lastTimestamp = timestamp >>> 0;
      this.#lastExtended = extended;
      if (this.followArrivals) this.#measure(extended, arrivalMs);
    }
    this.#lastArrivalMs = Math.max(this.#lastArrivalMs, arrivalMs);
    return this.#toMs(extended);
  }

  /**
   * The extended time of `timestamp`: the signed 32-bit step from the latest packet's, plus the
   * wraps that bring it nearest the ticks `passedMs` of arrivals stand for.
   */
  #extend(timestamp: number, passedMs: number): number {
    const step = this.#step(timestamp);
    const wraps = Math.round((passedMs / this.#msPerTick - step) / 2 ** 32);
    return this.#lastExtended + step + wraps * 2 ** 32;
  }

  /** The signed 32-bit step from the latest packet's timestamp. */
  #step(timestamp: number): number {
    return ((timestamp >>> 0) - this.#lastTimestamp) | 0;
  }

  #toMs(extended: number): number {
    return this.#anchorMs + (extended - this.#anchorExtended) * this.#msPerTick;
  }

  /** Keeps the window's least-delayed packet; at a window's end, follows the fit. */
  #measure(extended: number, arrivalMs: number): void {
    const delayMs = arrivalMs - this.#toMs(extended);
    if (!this.#least || delayMs < this.#least.delayMs) this.#least = { extended, arrivalMs, delayMs };
    if (arrivalMs - this.#windowStart < WINDOW_MS) return;
    this.#points.push({ extended: this.#least.extended, arrivalMs: this.#least.arrivalMs });
    if (this.#points.length > FIT_POINTS) this.#points.shift();
    this.#least = undefined;
    this.#windowStart = arrivalMs;
    if (this.#points.length >= FIRST_FIT_POINTS) this.#follow();
  }

  /** Bends the mapping, from the latest packet on, toward the line fitted through the points. */
  #follow(): void {
    const first = fitLine(this.#points);
    const timely = this.#points.filter((p) => p.arrivalMs - first.at(p.extended) <= DELAYED_POINT_MS);
    const line = timely.length >= FIRST_FIT_POINTS ? fitLine(timely) : first;
    const at = this.#toMs(this.#lastExtended);
    const pullTicks = PULL_MS / this.#nominalMsPerTick;
    const wanted = line.msPerTick + (line.at(this.#lastExtended) - at) / pullTicks;
    const most = TIMELINE_LIMITS.maxSkew * this.#nominalMsPerTick;
    this.#msPerTick = Math.min(this.#nominalMsPerTick + most, Math.max(this.#nominalMsPerTick - most, wanted));
    this.#anchorExtended = this.#lastExtended;
    this.#anchorMs = at;
  }
}

/** The least-squares line of arrival on extended time through `points`, taken from the latest. */
function fitLine(points: readonly Point[]): { msPerTick: number; at: (extended: number) => number } {
  // Points of different windows are of different times: they only move forward (`#measure`).
  const origin = points.at(-1)!;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += p.extended - origin.extended;
    sy += p.arrivalMs - origin.arrivalMs;
  }
  const mx = sx / points.length;
  const my = sy / points.length;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    const dx = p.extended - origin.extended - mx;
    sxy += dx * (p.arrivalMs - origin.arrivalMs - my);
    sxx += dx * dx;
  }
  const msPerTick = sxy / sxx;
  return {
    msPerTick,
    at: (extended) => origin.arrivalMs + my + (extended - origin.extended - mx) * msPerTick,
  };
}
