import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { unavailable } from './errors.js';

/** When the gateway counts as overloaded; 0 turns a measure off. */
export interface LoadLimits {
  /** Event-loop delay, 99th percentile over the last window (ms). */
  eventLoopDelayMs: number;
  /** Share of the last window the event loop was busy (0..1). */
  eventLoopUtilization: number;
  /** The whole machine's CPU in use over the last window (% of all cores). */
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

/** Takes a sample of the window since the previous call. */
export type LoadSampler = () => LoadSample;

const WINDOW_MS = 1000;
/**
 * Windows in a row past a limit before the gateway counts as overloaded: load that lasts, not a
 * moment of the gateway's own (a publish's handshake, code compiled on first use, a burst of
 * start-ups), which would refuse work while the machine has room.
 */
export const SUSTAINED_WINDOWS = 3;
/** Overloaded for at least this long after the last window that was: no flapping at the edge. */
const HOLD_MS = 3000;

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
  /** Windows in a row past a limit, up to now. */
  #over = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly limits: LoadLimits,
    private readonly sample: LoadSampler = processSampler(),
    private readonly now: () => number = Date.now,
    windowMs = WINDOW_MS,
  ) {
    // Sampled even with every limit off: the figures go to /metrics.
    this.#timer = setInterval(() => this.tick(), windowMs);
    this.#timer.unref();
  }

  /** The latest window's measures. */
  get last(): LoadSample {
    return this.#last;
  }

  /** Why the gateway is overloaded now, or undefined. */
  get overload(): string | undefined {
    return this.now() < this.#overloadedUntil ? this.#reason : undefined;
  }

  /** Takes the next window's sample and judges it; called every window. */
  tick(): void {
    const sample = (this.#last = this.sample());
    const { limits } = this;
    const reason =
      limits.eventLoopDelayMs > 0 && sample.eventLoopDelayMs >= limits.eventLoopDelayMs
        ? `event-loop delay p99 ${Math.round(sample.eventLoopDelayMs)} ms (overload_event_loop_delay_ms ${limits.eventLoopDelayMs})`
        : limits.eventLoopUtilization > 0 && sample.eventLoopUtilization >= limits.eventLoopUtilization
          ? `event loop busy ${Math.round(sample.eventLoopUtilization * 100)} % (overload_event_loop_utilization ${limits.eventLoopUtilization})`
          : limits.machineCpuPercent > 0 && sample.machineCpuPercent >= limits.machineCpuPercent
            ? `machine CPU ${Math.round(sample.machineCpuPercent)} % (overload_machine_cpu_percent ${limits.machineCpuPercent})`
            : undefined;
    this.#over = reason ? this.#over + 1 : 0;
    if (!reason || this.#over < SUSTAINED_WINDOWS) return;
    this.#reason = reason;
    this.#overloadedUntil = this.now() + HOLD_MS;
  }

  /** Throws 503 when overloaded: `what` (a publish, a push) is not taken on. */
  admit(what: string): void {
    const overload = this.overload;
    if (overload) throw unavailable(`the gateway is overloaded (${overload}): ${what} refused, the streams running keep their share`, Math.ceil(HOLD_MS / 1000));
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

const DELAY_RESOLUTION_MS = 50;

/** This process's event loop and the machine's CPU, from Node's perf hooks and /proc/stat. */
export function processSampler(): LoadSampler {
  // Sampled every 50 ms: an idle worker's timer wakes it 20 times a second rather than 100. The
  // histogram holds the time between samples, which includes that period: the delay is what is
  // beyond it.
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  delay.enable();
  let utilization: EventLoopUtilization = performance.eventLoopUtilization();
  let cpu = machineCpuTimes();
  return () => {
    const beyond = (ns: number): number => (delay.count > 0 ? Math.max(0, ns / 1e6 - DELAY_RESOLUTION_MS) : 0);
    const delayMs = beyond(delay.percentile(99));
    const delayMaxMs = beyond(delay.max);
    delay.reset();
    const next = performance.eventLoopUtilization();
    const window = performance.eventLoopUtilization(next, utilization);
    utilization = next;
    const times = machineCpuTimes();
    const machineCpuPercent = times && cpu && times.total > cpu.total ? ((times.busy - cpu.busy) / (times.total - cpu.total)) * 100 : 0;
    cpu = times;
    return { eventLoopDelayMs: delayMs, eventLoopDelayMaxMs: delayMaxMs, eventLoopUtilization: window.utilization, machineCpuPercent };
  };
}

/** Busy and total CPU time of the whole machine so far (clock ticks), from /proc/stat; undefined off Linux. */
export function machineCpuTimes(): { busy: number; total: number } | undefined {
  try {
    const values = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = values.reduce((a, b) => a + b, 0);
    return { busy: total - values[3]! - (values[4] ?? 0), total };
  } catch {
    return undefined;
  }
}
