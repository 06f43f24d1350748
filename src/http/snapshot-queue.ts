import { trackSize } from '../core/tracked.js';
import { WorkQueue } from './work-queue.js';

/**
 * What the snapshot route may spend, for every caller together: at most `decoders` snapshots are
 * made at once, `queue` more wait their turn, and any beyond get 503 with `Retry-After`. Requests
 * for a stream whose snapshot is already under way share it; the thread or node that holds the stream reuses
 * a keyframe's picture until the next keyframe (`KeyframePictures`).
 */
export class SnapshotQueue {
  readonly #work: WorkQueue;
  readonly #underWay = new Map<string, Promise<Buffer>>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: SnapshotQueue): void {
    trackSize('snapshots_under_way', owner, (self) => self.#underWay.size);
  }

  constructor(
    private readonly make: (name: string) => Promise<Buffer>,
    decoders: number,
    queue: number,
  ) {
    SnapshotQueue.#trackSizes(this);
    this.#work = new WorkQueue({
      running: decoders,
      queue,
      what: 'snapshots',
      keys: { running: 'limit_snapshot_decoders', queue: 'limit_snapshot_queue' },
    });
  }

  snapshot(name: string): Promise<Buffer> {
    const shared = this.#underWay.get(name);
    if (shared) return shared;
    const picture = this.#work.run(undefined, () => this.make(name)).finally(() => this.#underWay.delete(name));
    this.#underWay.set(name, picture);
    return picture;
  }
}
