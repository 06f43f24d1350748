import { monotonicMs } from './clock.js';
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { unavailable } from './errors.js';

/** When the gateway counts as overloaded; 0 turns a measure off. */
export interface LoadLimits {
  /** Event-loop delay, 99th percentile over the last window (ms). */
  eventLoopDelayMs: number;
  /** Share of the last window the event loop was busy (0..1). */
  eventLoopUtilization: number;
  /** CPU in use over the last window: the container's share when it has a quota, else the whole machine's (% of it). */
  machineCpuPercent: number;
}

/** One window's measures. */
export interface LoadSample {
  /** Event-loop delay, 99th percentile (ms). */
  eventLoopDelayMs: number;
  /** The longest the event loop was held (ms): the longest step that ran on it. */
  eventLoopDelayMaxMs: number;
  eventLoopUtilization: number;
  machineCpuPercent: number;
}

/** A thread's load, sampled once a window; its event-loop delay measured only while `watchDelay(true)`. */
export interface LoadSampler {
  /** Takes a sample of the window since the previous call. */
  sample(): LoadSample;
  /** Starts or stops measuring the event loop's delay (a timer that wakes the thread 20 times a second). */
  watchDelay?(on: boolean): void;
}

const WINDOW_MS = 1000;
/** Windows the event-loop delay is measured after an admission, carried or not yet. */
const ADMITTED_WATCH_WINDOWS = 5;
/**
 * Windows in a row past a limit before the gateway counts as overloaded: load that lasts, not a
 * moment of the gateway's own (a publish's handshake, code compiled on first use, a burst of
 * start-ups), which would refuse work while the machine has room.
 */
export const SUSTAINED_WINDOWS = 3;
/** Overloaded for at least this long after the last window that was: no flapping at the edge. */
const HOLD_MS = 3000;
/**
 * The machine (or the container's quota) counts as saturated, whatever the limits say, when its
 * CPU was at least this busy over the last window, or when the window's own timer came a window
 * late or more (this thread did not get the CPU to run it): what tells a push whose encoder falls
 * behind that the machine is short of CPU, not its destination slow.
 */
export const SATURATED_CPU_PERCENT = 90;

/**
 * Measures the gateway's load every second and says when it has been past its limits for
 * `SUSTAINED_WINDOWS` windows in a row, so that new publishes and pushes are refused (503) before
 * the ones running degrade: a busy or late event loop is when UDP receive buffers overflow and
 * every stream loses packets at once; a saturated machine starves the gateway and its ffmpeg
 * processes alike.
 */
export class LoadMonitor {
  #last: LoadSample = { eventLoopDelayMs: 0, eventLoopDelayMaxMs: 0, eventLoopUtilization: 0, machineCpuPercent: 0 };
  #overloadedUntil = 0;
  #reason: string | undefined;
  #lastTickAt: number;
  #tickLateMs = 0;
  readonly #windowMs: number;
  /** Windows in a row past a limit, up to now. */
  #over = 0;
  readonly #timer: NodeJS.Timeout;
  /** Whether the thread carries anything (`watchWhile`); its delay is measured only then. */
  #carrying: (() => boolean) | undefined;
  #watching = true;
  #admittedAt = -Infinity;

  constructor(
    private readonly limits: LoadLimits,
    private readonly sample: LoadSampler = processSampler(),
    private readonly now: () => number = monotonicMs,
    windowMs = WINDOW_MS,
  ) {
    // Sampled even with every limit off: the figures go to /metrics.
    this.#windowMs = windowMs;
    this.#lastTickAt = this.now();
    this.#timer = setInterval(() => {
      const at = this.now();
      this.#tickLateMs = at - this.#lastTickAt - windowMs;
      this.#lastTickAt = at;
      this.tick();
    }, windowMs);
    this.#timer.unref();
  }

  /** The latest window's measures. */
  get last(): LoadSample {
    return this.#last;
  }

  /**
   * Whether the machine is out of CPU now (`SATURATED_CPU_PERCENT`), limits or none: also while
   * this window's timer is a window overdue, the thread starved before it could measure.
   */
  get saturated(): boolean {
    const overdueMs = this.now() - this.#lastTickAt - this.#windowMs;
    return (
      this.#last.machineCpuPercent >= SATURATED_CPU_PERCENT || Math.max(this.#tickLateMs, overdueMs) >= this.#windowMs
    );
  }

  /** Why the gateway is overloaded now, or undefined. */
  get overload(): string | undefined {
    return this.now() < this.#overloadedUntil ? this.#reason : undefined;
  }

  /**
   * Measures the event loop's delay only while `carrying()` (publishers, pushes, ffmpeg): an idle
   * thread has nothing to delay, and the measuring timer was most of an idle gateway's CPU. It
   * starts again at once when something is admitted (`admit`), and is kept on for
   * `ADMITTED_WATCH_WINDOWS` after, while its set-up makes what it carries; otherwise at the next
   * window that finds something carried.
   */
  watchWhile(carrying: () => boolean): void {
    this.#carrying = carrying;
  }

  #watch(on: boolean): void {
    if (on === this.#watching) return;
    this.#watching = on;
    this.sample.watchDelay?.(on);
  }

  /** Takes the next window's sample and judges it; called every window. */
  tick(): void {
    const sample = (this.#last = this.sample.sample());
    if (this.#carrying)
      this.#watch(this.#carrying() || this.now() - this.#admittedAt < ADMITTED_WATCH_WINDOWS * this.#windowMs);
    const { limits } = this;
    const reason =
      limits.eventLoopDelayMs > 0 && sample.eventLoopDelayMs >= limits.eventLoopDelayMs
        ? `event-loop delay p99 ${Math.round(sample.eventLoopDelayMs)} ms ` +
          `(overload_event_loop_delay_ms ${limits.eventLoopDelayMs})`
        : limits.eventLoopUtilization > 0 && sample.eventLoopUtilization >= limits.eventLoopUtilization
          ? `event loop busy ${Math.round(sample.eventLoopUtilization * 100)} % ` +
            `(overload_event_loop_utilization ${limits.eventLoopUtilization})`
          : limits.machineCpuPercent > 0 && sample.machineCpuPercent >= limits.machineCpuPercent
            ? `machine CPU ${Math.round(sample.machineCpuPercent)} % ` +
              `(overload_machine_cpu_percent ${limits.machineCpuPercent})`
            : undefined;
    this.#over = reason ? this.#over + 1 : 0;
    if (!reason || this.#over < SUSTAINED_WINDOWS) return;
    this.#reason = reason;
    this.#overloadedUntil = this.now() + HOLD_MS;
  }

  /** Throws 503 when overloaded: `what` (a publish, a push) is not taken on. */
  admit(what: string): void {
    this.#admittedAt = this.now();
    this.#watch(true);
    const overload = this.overload;
    if (overload)
      throw unavailable(
        `the gateway is overloaded (${overload}): ${what} refused, the streams running keep their share`,
        Math.ceil(HOLD_MS / 1000),
      );
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

const DELAY_RESOLUTION_MS = 50;

/** This process's event loop and the CPU it may use (`cpuTimes`), from Node's perf hooks, the cgroup and /proc/stat. */
function processSampler(): LoadSampler {
  const cpuTimes = cpuTimesReader();
  // Sampled every 50 ms: an idle worker's timer wakes it 20 times a second rather than 100. The
  // histogram holds the time between samples, which includes that period: the delay is what is
  // beyond it.
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  delay.enable();
  let utilization: EventLoopUtilization = performance.eventLoopUtilization();
  let cpu = cpuTimes();
  return {
    sample: () => {
      const beyond = (ns: number): number => (delay.count > 0 ? Math.max(0, ns / 1e6 - DELAY_RESOLUTION_MS) : 0);
      const delayMs = beyond(delay.percentile(99));
      const delayMaxMs = beyond(delay.max);
      delay.reset();
      const next = performance.eventLoopUtilization();
      const window = performance.eventLoopUtilization(next, utilization);
      utilization = next;
      const times = cpuTimes();
      const machineCpuPercent =
        times && cpu && times.total > cpu.total ? ((times.busy - cpu.busy) / (times.total - cpu.total)) * 100 : 0;
      cpu = times;
      return {
        eventLoopDelayMs: delayMs,
        eventLoopDelayMaxMs: delayMaxMs,
        eventLoopUtilization: window.utilization,
        machineCpuPercent,
      };
    },
    watchDelay: (on) => {
      if (on) delay.enable();
      else {
        delay.disable();
        delay.reset();
      }
    },
  };
}

/** Reads a file's text; undefined when it cannot. */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** A CPU quota: `cores` cores' worth of time, and how to read the time used so far (µs). */
export interface CpuQuota {
  cores: number;
  usageUs: () => number | undefined;
}

/**
 * The CPU quota of this process's cgroup, when one is set (a container limited to some cores): v2's
 * `cpu.max` and `cpu.stat`, or v1's `cpu.cfs_quota_us`, `cpu.cfs_period_us` and `cpuacct.usage`.
 * Looked for at the process's own cgroup path, then at the root (a container's own namespace).
 */
export function cgroupQuota(read: ReadText = readText): CpuQuota | undefined {
  const lines = (read('/proc/self/cgroup') ?? '').split('\n');
  const pathOf = (match: (controllers: string[]) => boolean): string | undefined => {
    for (const line of lines) {
      const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
      if (path !== undefined && match(controllers!.split(','))) return path === '/' ? '' : path;
    }
    return undefined;
  };
  const v2 = pathOf((c) => c.length === 1 && c[0] === '');
  for (const dir of v2 === undefined ? [] : [`/sys/fs/cgroup${v2}`, '/sys/fs/cgroup']) {
    const [quota, period] = (read(`${dir}/cpu.max`) ?? '').trim().split(/\s+/);
    if (!quota || quota === 'max' || !Number(period)) continue;
    return {
      cores: Number(quota) / Number(period),
      usageUs: () => {
        const usage = /^usage_usec (\d+)/m.exec(read(`${dir}/cpu.stat`) ?? '');
        return usage ? Number(usage[1]) : undefined;
      },
    };
  }
  const v1 = pathOf((c) => c.includes('cpu'));
  const v1Acct = pathOf((c) => c.includes('cpuacct'));
  if (v1 === undefined) return undefined;
  for (const [cpuDir, acctDir] of [
    [`/sys/fs/cgroup/cpu${v1}`, `/sys/fs/cgroup/cpuacct${v1Acct ?? v1}`],
    ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct'],
  ] as const) {
    const quota = Number(read(`${cpuDir}/cpu.cfs_quota_us`));
    const period = Number(read(`${cpuDir}/cpu.cfs_period_us`));
    if (!(quota > 0) || !(period > 0)) continue;
    return {
      cores: quota / period,
      usageUs: () => {
        const ns = Number(read(`${acctDir}/cpuacct.usage`));
        return Number.isFinite(ns) && ns > 0 ? ns / 1000 : undefined;
      },
    };
  }
  return undefined;
}

/**
 * Busy and total CPU time so far, in units of their own: within a cgroup's quota, the cgroup's use
 * against the quota's cores over wall time (µs); otherwise the whole machine's, from /proc/stat.
 */
export function cpuTimesReader(
  read: ReadText = readText,
  nowUs: () => number = () => performance.timeOrigin * 1000 + performance.now() * 1000,
): () => { busy: number; total: number } | undefined {
  const quota = cgroupQuota(read);
  if (!quota) return () => machineCpuTimes(read);
  return () => {
    const busy = quota.usageUs();
    return busy === undefined ? undefined : { busy, total: nowUs() * quota.cores };
  };
}

/** Busy and total CPU time of the whole machine so far (clock ticks), from /proc/stat; undefined off Linux. */
export function machineCpuTimes(read: ReadText = readText): { busy: number; total: number } | undefined {
  const stat = read('/proc/stat');
  if (!stat) return undefined;
  const values = stat.split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  return { busy: total - values[3]! - (values[4] ?? 0), total };
}

/** Clock ticks a second in /proc's CPU times (Linux's USER_HZ). */
const CLOCK_TICKS = 100;

/**
 * CPU time (s) the gateway has used so far: this process (every thread) and every process below
 * it alive now: media workers, the spawners and the ffmpeg they started (/proc/self/task/<id>/children,
 * then each descendant's utime and stime and its own main thread's children; a spawner starts its
 * children from its main thread, ffmpeg starts none). A process that ended takes its time with it:
 * the figure is for differences over a second.
 */
export function gatewayCpuSeconds(read: ReadText = readText): number {
  const { user, system } = process.cpuUsage();
  let seconds = (user + system) / 1e6;
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return seconds;
  }
  const pending = tasks.flatMap((task) => childrenOf(read(`/proc/self/task/${task}/children`)));
  // A process tree is shallow (gateway, spawner, ffmpeg); the bound keeps a bad read from looping.
  for (let i = 0; i < pending.length && i < 100_000; i++) {
    const pid = pending[i]!;
    seconds += processCpuSeconds(pid, read);
    pending.push(...childrenOf(read(`/proc/${pid}/task/${pid}/children`)));
  }
  return seconds;
}

const childrenOf = (text: string | undefined): number[] => (text ?? '').split(/\s+/).filter(Boolean).map(Number);

/** CPU time (s) process `pid` has used so far; 0 for one that is gone. */
export function processCpuSeconds(pid: number, read: ReadText = readText): number {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return 0;
  // After the command's closing parenthesis: utime and stime are fields 14 and 15 of the line.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
