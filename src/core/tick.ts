import { monotonicMs } from './clock.js';

/**
 * The media path's periodic work on one timer per thread: a stream's keyframe schedule and rate
 * sample, an output's audio kept moving through a stall, the watchdogs of a push's ffmpeg and RTMP
 * connection and of a stream's media. Each had an interval of its own, firing at moments of its
 * own: about 200 callbacks a second on a worker thread with eight streams and their pushes.
 *
 * A job that throws does not keep the others from their turn: its error is thrown again on its own,
 * as it would have been from a timer of its own. Unref'd: the tick never keeps the process alive.
 */
const TICK_MS = 100;

interface Job {
  readonly run: () => void;
  /** Runs on every `every`-th tick. */
  readonly every: number;
  ticks: number;
}

const jobs = new Set<Job>();
let timer: NodeJS.Timeout | undefined;

function tick(): void {
  for (const job of jobs) {
    if (++job.ticks < job.every) continue;
    job.ticks = 0;
    try {
      job.run();
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }
}

/**
 * Runs `run` every `everyMs` (rounded to whole ticks, at least one) on this thread's tick, the
 * first time within `everyMs`; returns the function that stops it.
 */
export function onTick(run: () => void, everyMs = TICK_MS): () => void {
  const job: Job = { run, every: Math.max(1, Math.round(everyMs / TICK_MS)), ticks: 0 };
  jobs.add(job);
  timer ??= setInterval(tick, TICK_MS).unref();
  return () => {
    if (!jobs.delete(job) || jobs.size > 0) return;
    clearInterval(timer);
    timer = undefined;
  };
}

/** A check called later than this past its interval (ms), or a whole interval late, was not on time. */
const LATE_MS = 500;

/**
 * Calls `check` every `everyMs` on the thread's tick, telling it whether the call came on time; returns
 * the function that stops it. A thread starved of CPU (a saturated machine) runs its overdue timers
 * before it reads what its sockets and pipes hold: a silence measured by a late call may be data
 * waiting to be read, and a watchdog judges nothing then.
 */
export function checkEvery(everyMs: number, check: (now: number, onTime: boolean) => void): () => void {
  let last = monotonicMs();
  return onTick(() => {
    const now = monotonicMs();
    const onTime = now - last <= everyMs + Math.max(everyMs, LATE_MS);
    last = now;
    check(now, onTime);
  }, everyMs);
}
