import { trackSize } from '../core/tracked.js';
import { tooMany, unavailable } from '../core/errors.js';

/** What a `WorkQueue` may spend, and the configuration keys that set it (named in refusals). */
export interface WorkLimits {
  /** Jobs run at once, for every caller together. */
  running: number;
  /** Jobs waiting for a turn beyond those; more are refused with 503 at once. */
  queue: number;
  /** Jobs of one caller (running or waiting); more are refused with 429 at once. Unbounded when absent. */
  perCaller?: number;
  /** What the jobs are, and the keys of the three limits, for the refusals' messages. */
  what: string;
  keys: { running: string; queue: string; perCaller?: string };
}

/**
 * Work that spends a process or a connection on a caller's behalf (a destination check, a snapshot's
 * decoder): at most `running` jobs at once, `queue` more waiting their turn in order, and
 * `perCaller` of one caller's; anything beyond is refused at once (429 for the caller's own bound,
 * 503 for the gateway's), never left to pile up.
 */
export class WorkQueue {
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #perCaller = new Map<string, number>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: WorkQueue): void {
    trackSize('work_queue_callers', owner, (self) => self.#perCaller.size);
  }

  constructor(private readonly limits: WorkLimits) {
    WorkQueue.#trackSizes(this);
  }

  run<T>(caller: string | undefined, work: () => Promise<T>): Promise<T> {
    const { limits } = this;
    const mine = caller === undefined ? 0 : (this.#perCaller.get(caller) ?? 0);
    if (limits.perCaller !== undefined && mine >= limits.perCaller) {
      return Promise.reject(
        tooMany(`${limits.what}: this address has ${mine} under way already (${limits.keys.perCaller})`, 1),
      );
    }
    if (this.#running >= limits.running && this.#waiting.length >= limits.queue) {
      return Promise.reject(
        unavailable(
          `${limits.what}: ${this.#running} under way and ${this.#waiting.length} waiting, ` +
            `the gateway's limit (${limits.keys.running}, ${limits.keys.queue})`,
          1,
        ),
      );
    }
    if (caller !== undefined) this.#perCaller.set(caller, mine + 1);
    return this.#turn(work).finally(() => {
      if (caller === undefined) return;
      const left = (this.#perCaller.get(caller) ?? 1) - 1;
      if (left > 0) this.#perCaller.set(caller, left);
      else this.#perCaller.delete(caller);
    });
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  async #turn<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running < this.limits.running) this.#running++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)); // a finishing job hands its turn over
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
