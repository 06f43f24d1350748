import type { Logger } from 'pino';
import { monotonicMs } from '../core/clock.js';
import { cpuTimesReader, gatewayCpuSeconds, SATURATED_CPU_PERCENT } from '../core/load.js';
import type { Sheddable } from '../pushes/info.js';

/**
 * What the shedder asks of the machine's pushes: the routed calls of the machine's own plane (not
 * the cluster's), across every worker thread.
 */
export interface ShedPlane {
  sheddable(): Promise<Sheddable[]>;
  shed(mediaSessionId: string, reason: string): Promise<boolean>;
  unshed(mediaSessionId: string): Promise<boolean>;
}

export interface ShedSettings {
  /** Pushes running that shedding never goes below (`shed_min_pushes`); never below one. */
  floor: number;
  /** The machine's CPU in use now, % (the container's quota when it has one); read once a check. */
  cpuPercent?: () => number;
  /** CPU time the gateway and its children have used so far (s): what a shed frees, or the others take. */
  gatewayCpuSeconds?: () => number;
  now?: () => number;
}

/** A push behind for this long on a saturated machine makes one push be shed (ms). */
export const SHED_BEHIND_MS = 10_000;
/** Pushes are shed no closer together than this: each shed is given time to relieve the machine (ms). */
export const SHED_SPACING_MS = 15_000;
/**
 * How long the machine must have been calm before a push shed `n` times starts again: 5 s after
 * its first shed, 2 min after its second, 10 min after its third, 30 min from then on (ms).
 */
export const UNSHED_AFTER_MS = [5000, 120_000, 600_000, 1_800_000] as const;
/** Shed pushes start again one at a time, this far apart, so that their start-ups do not bring the load back (ms). */
const UNSHED_SPACING_MS = 3000;
/** A push not shed for this long starts its count afresh (ms): a week's load peaks are not held against it. */
const FORGET_MS = 3_600_000;
const CHECK_MS = 1000;
/** The gateway's CPU is averaged over this long (ms) before a shed, and again before the next. */
const RATE_WINDOW_MS = 10_000;
/**
 * A shed helped when fewer of the other pushes were behind after it, or when the gateway's CPU fell
 * by less than this share of what the shed push had used: the others took the rest.
 */
const HELPED_SHARE = 0.5;

/** CPU in use over the time since the reader was last called, %: the machine's, or its container's quota. */
function cpuSampler(): () => number {
  const read = cpuTimesReader();
  let last = read();
  return () => {
    const now = read();
    const percent =
      now && last && now.total > last.total ? ((now.busy - last.busy) / (now.total - last.total)) * 100 : 0;
    last = now;
    return percent;
  };
}

/**
 * Keeps a saturated machine's pushes going by giving up one, rather than losing them all: one
 * decision for the whole machine (every worker thread's pushes, through the plane), taken once a
 * second.
 *
 * - When: the machine's CPU is saturated (`SATURATED_CPU_PERCENT`, or this check came a whole
 *   period late) and a push's encoder has been behind for `SHED_BEHIND_MS`; at most one shed every
 *   `SHED_SPACING_MS`.
 * - Which: of the pushes that shedding takes (running), the one that frees the most (an encoder of
 *   its own that transcodes, then its own ffmpeg; one sharing an encoder frees almost nothing),
 *   the newest among equals. A push in standby or reconnecting is not a candidate.
 * - How far: never below `floor` pushes running, never the last; and only while shedding helps:
 *   when a shed left as many other pushes behind as before, and the gateway's CPU (its own and its
 *   children's, over 10 s) fell by more than half of what the shed push's ffmpeg had used, what it
 *   freed went to another program, and nothing more is shed until the machine has been calm.
 * - Back: once the machine has been calm for as long as a shed push's count says (`UNSHED_AFTER_MS`:
 *   seconds after its first shed, minutes after its second), one at a time.
 *
 * Each shed push shows `reconnecting` with the reason in `lastError`, counts it in `counters.sheds`
 * (and `gateway_push_sheds_total`), and its state change goes out as any other.
 */
export class Shedder {
  /** Pushes shed and not started again, in the order they were shed. */
  #waiting: string[] = [];
  /** Each push's sheds: how many (within `FORGET_MS` of each other) and when the last was. */
  readonly #history = new Map<string, { count: number; at: number }>();
  #lastShedAt = -Infinity;
  #lastUnshedAt = -Infinity;
  #saturatedAt = -Infinity;
  #lastCheckAt: number;
  /**
   * The last shed: how many other pushes were behind then, the gateway's CPU over the window before
   * it, and what of it the shed push used (cores).
   */
  #last: { mediaSessionId: string; othersBehind: number; rate: number; freed: number } | undefined;
  /** The gateway's CPU time so far and each push's own, sampled each check over the last `RATE_WINDOW_MS`. */
  readonly #cpuSamples: { at: number; seconds: number; pushes: Map<string, number> }[] = [];
  readonly #gatewayCpu: () => number;
  /** Shedding did not help: nothing more is shed until the machine is calm. */
  #stalled = false;
  /** At the floor: said once until it is left. */
  #atFloor = false;
  #checking = false;
  readonly #timer: NodeJS.Timeout;
  readonly #cpuPercent: () => number;
  readonly #now: () => number;

  constructor(
    private readonly plane: ShedPlane,
    private readonly settings: ShedSettings,
    private readonly log: Logger,
  ) {
    this.#cpuPercent = settings.cpuPercent ?? cpuSampler();
    this.#now = settings.now ?? monotonicMs;
    this.#gatewayCpu = settings.gatewayCpuSeconds ?? gatewayCpuSeconds;
    this.#lastCheckAt = this.#now();
    this.#timer = setInterval(() => void this.check(), CHECK_MS).unref();
  }

  /** Pushes shed and not started again yet. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Sheds, or starts again, what is due now; called every second. */
  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const now = this.#now();
      const late = now - this.#lastCheckAt - CHECK_MS >= CHECK_MS;
      this.#lastCheckAt = now;
      const cpu = this.#cpuPercent();
      const saturated = cpu >= SATURATED_CPU_PERCENT || late;
      if (saturated) this.#saturatedAt = now;
      // Calm, nothing shed: nothing to weigh. The pushes and the gateway's CPU (a read of /proc per
      // child) are looked at only while it matters.
      if (!saturated && this.#waiting.length === 0) return this.#rest(now);
      const seconds = this.#gatewayCpu();
      const pushes = await this.plane.sheddable();
      this.#cpuSamples.push({ at: now, seconds, pushes: new Map(pushes.map((p) => [p.mediaSessionId, p.cpuSeconds])) });
      while (this.#cpuSamples.length > 2 && now - this.#cpuSamples[1]!.at >= RATE_WINDOW_MS) this.#cpuSamples.shift();
      const shed = new Set(pushes.filter((p) => p.shed).map((p) => p.mediaSessionId));
      // Forgotten: those ended meanwhile, or started again by other means.
      this.#waiting = this.#waiting.filter((id) => shed.has(id));
      const known = new Set(pushes.map((p) => p.mediaSessionId));
      for (const id of this.#history.keys()) if (!known.has(id)) this.#history.delete(id);
      if (saturated) await this.#shedOne(pushes, now, Math.round(cpu));
      else {
        this.#calm(now);
        await this.#unshedOne(now);
      }
    } catch (error) {
      this.log.warn({ err: error }, 'the shedder could not check the pushes');
    } finally {
      this.#checking = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** Calm for a while, not for a sample between two busy ones: shedding may help again. */
  #calm(now: number): void {
    if (now - this.#saturatedAt < UNSHED_AFTER_MS[0]) return;
    this.#stalled = false;
    this.#last = undefined;
  }

  /** A calm machine with nothing shed: the CPU samples go, and sheds older than `FORGET_MS` are forgotten. */
  #rest(now: number): void {
    this.#calm(now);
    this.#cpuSamples.length = 0;
    for (const [id, history] of this.#history) if (now - history.at >= FORGET_MS) this.#history.delete(id);
  }

  async #shedOne(pushes: Sheddable[], now: number, cpu: number): Promise<void> {
    const behind = pushes.filter((p) => p.behindSince !== null && now - p.behindSince >= SHED_BEHIND_MS);
    if (behind.length === 0 || this.#stalled || now - this.#lastShedAt < SHED_SPACING_MS) return;
    const running = pushes.filter((p) => p.running && !p.shed);
    const rate = this.#rate();
    const last = this.#last;
    if (
      last &&
      behind.filter((p) => p.mediaSessionId !== last.mediaSessionId).length >= last.othersBehind &&
      rate < last.rate - last.freed * HELPED_SHARE
    ) {
      // What the shed push freed went elsewhere: another program has the CPU, and shedding more would not help.
      this.#stalled = true;
      this.log.warn(
        {
          behind: behind.length,
          cpuPercent: cpu,
          gatewayCores: round(rate),
          before: round(last.rate),
          freed: round(last.freed),
        },
        'a shed gave the other pushes no CPU and left them as far behind: the load is not the pushes, nothing more is shed until it passes',
      );
      return;
    }
    if (running.length <= Math.max(1, this.settings.floor)) {
      if (!this.#atFloor)
        this.log.warn(
          { running: running.length, floor: this.settings.floor },
          'the machine is saturated, but no push is shed below shed_min_pushes (or the last one)',
        );
      this.#atFloor = true;
      return;
    }
    this.#atFloor = false;
    const candidate = running.sort((a, b) => b.cost - a.cost || b.createdMonoMs - a.createdMonoMs)[0]!;
    const seconds = Math.round((now - Math.min(...behind.map((p) => p.behindSince!))) / 1000);
    const reason =
      `the machine is saturated (CPU ${cpu} %): ${behind.length} push${behind.length === 1 ? '' : 'es'} behind for ` +
      `${seconds} s, so this one, which frees the most of the newest, is ended to keep the others; ` +
      'it starts again once the load has passed';
    if (!(await this.plane.shed(candidate.mediaSessionId, reason))) return;
    const history = this.#history.get(candidate.mediaSessionId);
    const count = history && now - history.at < FORGET_MS ? history.count + 1 : 1;
    this.#history.set(candidate.mediaSessionId, { count, at: now });
    this.#waiting.push(candidate.mediaSessionId);
    this.#lastShedAt = now;
    const othersBehind = behind.filter((p) => p.mediaSessionId !== candidate.mediaSessionId).length;
    const freed = this.#rate(candidate.mediaSessionId);
    this.#last = { mediaSessionId: candidate.mediaSessionId, othersBehind, rate, freed };
    this.log.warn(
      {
        mediaSessionId: candidate.mediaSessionId,
        cost: candidate.cost,
        behind: behind.length,
        sheds: count,
        cpuPercent: cpu,
        gatewayCores: round(rate),
        freedCores: round(freed),
      },
      'the machine is saturated: a push is shed',
    );
  }

  /** The gateway's CPU over the samples kept, or push `id`'s own ffmpeg's (cores). */
  #rate(id?: string): number {
    const first = this.#cpuSamples[0];
    const last = this.#cpuSamples.at(-1);
    if (!first || !last || last.at <= first.at) return 0;
    const used =
      id === undefined ? last.seconds - first.seconds : (last.pushes.get(id) ?? 0) - (first.pushes.get(id) ?? 0);
    return Math.max(0, used) / ((last.at - first.at) / 1000);
  }

  async #unshedOne(now: number): Promise<void> {
    if (now - this.#lastUnshedAt < UNSHED_SPACING_MS) return;
    const calmMs = now - this.#saturatedAt;
    const due = this.#waiting.find((id) => {
      const count = this.#history.get(id)?.count ?? 1;
      return calmMs >= UNSHED_AFTER_MS[Math.min(count, UNSHED_AFTER_MS.length) - 1]!;
    });
    if (due === undefined) return;
    this.#waiting = this.#waiting.filter((id) => id !== due);
    this.#lastUnshedAt = now;
    if (await this.plane.unshed(due))
      this.log.info({ mediaSessionId: due }, 'the load has passed: a shed push starts again');
  }
}

const round = (n: number): number => Math.round(n * 1000) / 1000;
