import { monotonicMs } from '../core/clock.js';
/**
 * A push's grace period while its publisher is away: its one timer. The push keeps
 * the output up with the still picture meanwhile (`PushFeed`) and ends when the period is over.
 */
export class Standby {
  #until: number | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** When the grace period ends, while the publisher is away. */
  get until(): number | undefined {
    return this.#until;
  }

  /** The publisher went away: `over` is called if it has not come back within `graceMs`. */
  begin(graceMs: number, over: () => void): void {
    this.#until = monotonicMs() + graceMs;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#until !== undefined) over();
    }, graceMs);
  }

  /** The publisher came back, or the push ends: no timer fires after this. */
  end(): void {
    this.#until = undefined;
    clearTimeout(this.#timer);
  }
}
