import { unavailable } from '../errors.js';

/**
 * What the snapshot route may spend, for every caller together: at most `decoders` snapshots are
 * made at once, `queue` more wait their turn, and any beyond get 503 with `Retry-After`. Requests
 * for a stream whose snapshot is already under way share it; the place that holds the stream reuses
 * a keyframe's picture until the next keyframe (`KeyframePictures`).
 */
export class SnapshotQueue {
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #underWay = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly make: (name: string) => Promise<Buffer>,
    private readonly decoders: number,
    private readonly queue: number,
  ) {}

  snapshot(name: string): Promise<Buffer> {
    const shared = this.#underWay.get(name);
    if (shared) return shared;
    if (this.#running >= this.decoders && this.#waiting.length >= this.queue) {
      return Promise.reject(unavailable('snapshots: every decoder is busy and the queue is full (limit_snapshot_decoders, limit_snapshot_queue)', 1));
    }
    const picture = this.#run(name).finally(() => this.#underWay.delete(name));
    this.#underWay.set(name, picture);
    return picture;
  }

  async #run(name: string): Promise<Buffer> {
    if (this.#running < this.decoders) this.#running++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)); // a finishing snapshot hands its slot over
    try {
      return await this.make(name);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
