import type { Logger } from 'pino';
import { monotonicMs } from '../clock.js';

/** What the shedder needs of a push. */
export interface Sheddable {
  readonly mediaSessionId: string;
  /** When it was asked for (monotonic ms): the newest is shed first. */
  readonly createdMonoMs: number;
  /** Its output is up: it can be shed. */
  readonly isUp: boolean;
  readonly isShed: boolean;
  /** Since when its encoder has not kept up, the machine out of CPU (`Pipeline.behindSince`). */
  readonly behindSince: number | undefined;
  shed(reason: string): boolean;
  unshed(): void;
}

/** A push behind for this long on a saturated machine makes the newest push be shed (ms). */
export const SHED_BEHIND_MS = 10_000;
/** Pushes are shed no closer together than this: each shed is given time to relieve the machine (ms). */
export const SHED_SPACING_MS = 15_000;
/** The machine not saturated for this long, shed pushes start again… (ms) */
const CALM_MS = 3000;
/** …one at a time, this far apart, so that their start-ups do not bring the load back (ms). */
const UNSHED_SPACING_MS = 1500;
const CHECK_MS = 1000;

/**
 * Keeps a saturated machine's pushes going by giving up the newest one, rather than losing them
 * all. A push whose encoder falls behind first discards audio to catch up (`Pipeline`); when one
 * has stayed behind for `SHED_BEHIND_MS` while the machine is saturated (`LoadMonitor.saturated`:
 * out of CPU, not a slow destination), the newest push running is ended with a reason that says
 * so, at most one every `SHED_SPACING_MS`. Once the machine has been calm for `CALM_MS`, the shed
 * pushes start again, oldest shed first, one every `UNSHED_SPACING_MS`. One shedder per worker
 * thread: each gives up its own newest push.
 */
export class Shedder {
  readonly #shed: Sheddable[] = [];
  #lastShedAt = -Infinity;
  #lastUnshedAt = -Infinity;
  #saturatedAt = -Infinity;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly pushes: () => Iterable<Sheddable>,
    private readonly saturated: () => boolean,
    private readonly log: Logger,
    private readonly now: () => number = monotonicMs,
  ) {
    this.#timer = setInterval(() => this.check(), CHECK_MS).unref();
  }

  /** Pushes shed and not started again yet. */
  get waiting(): number {
    return this.#shed.length;
  }

  /** Sheds or starts again what is due now; called every second. */
  check(): void {
    const now = this.now();
    const all = [...this.pushes()];
    // Forgotten: those ended meanwhile, or started again by other means.
    for (let i = this.#shed.length - 1; i >= 0; i--)
      if (!all.includes(this.#shed[i]!) || !this.#shed[i]!.isShed) this.#shed.splice(i, 1);
    if (this.saturated()) {
      this.#saturatedAt = now;
      const behind = all.filter((push) => push.behindSince !== undefined && now - push.behindSince >= SHED_BEHIND_MS);
      if (behind.length === 0 || now - this.#lastShedAt < SHED_SPACING_MS) return;
      const newest = all
        .filter((push) => push.isUp && !push.isShed)
        .sort((a, b) => b.createdMonoMs - a.createdMonoMs)[0];
      if (!newest) return;
      const seconds = Math.round((now - Math.min(...behind.map((push) => push.behindSince!))) / 1000);
      const reason = `the machine is saturated (out of CPU): ${behind.length} push${behind.length === 1 ? '' : 'es'} behind for ${seconds} s, so the newest is ended to keep the others; it starts again once the load has passed`;
      if (!newest.shed(reason)) return;
      this.#shed.push(newest);
      this.#lastShedAt = now;
      this.log.warn(
        { mediaSessionId: newest.mediaSessionId, behind: behind.length, behindS: seconds },
        'the machine is saturated: the newest push is shed',
      );
      return;
    }
    if (this.#shed.length === 0 || now - this.#saturatedAt < CALM_MS || now - this.#lastUnshedAt < UNSHED_SPACING_MS)
      return;
    this.#lastUnshedAt = now;
    this.#shed.shift()!.unshed();
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
