/**
 * A gateway-wide count with a limit (publishers, active pushes), shared by every worker
 * through one SharedArrayBuffer: a worker takes a slot before it starts something and gives it
 * back when that ends, so `limit_publishers` and `limit_transponders` hold for the whole gateway.
 */
export class Slots {
  readonly #cells: Int32Array;

  /** `buffer`: from `Slots.buffer()`, the same for every worker; `index`: which count of it. */
  constructor(
    buffer: SharedArrayBuffer,
    private readonly index: number,
  ) {
    this.#cells = new Int32Array(buffer);
  }

  /** A count of its own, shared with nobody: a registry or service without workers. */
  static own(): Slots {
    return new Slots(Slots.buffer(1), 0);
  }

  /** Room for `counts` counts. */
  static buffer(counts = 3): SharedArrayBuffer {
    return new SharedArrayBuffer(counts * Int32Array.BYTES_PER_ELEMENT);
  }

  get taken(): number {
    return Atomics.load(this.#cells, this.index);
  }

  /** Takes a slot when fewer than `limit` are taken; false, and nothing taken, otherwise. */
  take(limit: number): boolean {
    for (;;) {
      const taken = Atomics.load(this.#cells, this.index);
      if (taken >= limit) return false;
      if (Atomics.compareExchange(this.#cells, this.index, taken, taken + 1) === taken) return true;
    }
  }

  give(): void {
    Atomics.sub(this.#cells, this.index, 1);
  }
}

/** The gateway-wide counts: which cell of the shared buffer holds which. */
export const PUBLISHER_SLOTS = 0;
export const PUSH_SLOTS = 1;
export const VIEWER_SLOTS = 2;
