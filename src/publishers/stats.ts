import { monotonicMs } from '../core/clock.js';
/** A byte counter's rate over the last second or so, sampled by the caller about once a second. */
export class RateMeter {
  #last: { atMs: number; bytes: number } | undefined;
  #bitsPerSecond = 0;

  sample(bytes: number, nowMs = monotonicMs()): void {
    const last = this.#last;
    if (last && nowMs > last.atMs) this.#bitsPerSecond = ((bytes - last.bytes) * 8 * 1000) / (nowMs - last.atMs);
    this.#last = { atMs: nowMs, bytes };
  }

  get kbps(): number {
    return Math.round(this.#bitsPerSecond / 1000);
  }
}
