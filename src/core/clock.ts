/**
 * The gateway's two clocks.
 *
 * - `monotonicMs` times media and measures durations: it never steps (an NTP correction, a leap
 *   smear or a VM resumed from a pause moves the wall clock, not it) and it is the same in every
 *   thread of the process, so frames relayed between worker threads keep their times. Its zero is
 *   arbitrary (the machine's boot): only differences mean anything.
 * - `wallClockMs` is for dates a person reads (logs, listings, file names, `onMetaData`'s creation
 *   time) and for times compared with other machines (the cluster's heartbeats, tokens' expiry,
 *   webhook signatures). Nothing that times media reads it: the lint rule `no-restricted-properties`
 *   keeps `Date.now` out of `src/` but here, and a unit test lists the files that read this one.
 */

/**
 * `performance.now()` counts from this thread's start on CLOCK_MONOTONIC; the offset turns it into
 * CLOCK_MONOTONIC itself, shared by all threads, at the cost of one BigInt read per thread.
 */
const offsetMs = Number(process.hrtime.bigint() / 1000n) / 1000 - performance.now();

/**
 * Whole milliseconds on the process-wide monotonic clock, as the wall clock's: media times are
 * anchored on it, and whole anchors keep the timelines' rounding as exact as their RTP steps.
 */
export function monotonicMs(): number {
  return Math.floor(offsetMs + performance.now());
}

/** Milliseconds since the epoch on the wall clock: for dates, never for timing media. */
export function wallClockMs(): number {
  // eslint-disable-next-line no-restricted-properties -- the one place the wall clock is read
  return Date.now();
}
