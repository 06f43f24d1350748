import { trackSize } from '../core/tracked.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';

/** Viewers told gone before their offer's answer was back, remembered this many at most. */
const GONE_KEPT = 1024;

/**
 * What each WHEP viewer holds of its client's quota (`limit_sessions_per_client`), from its offer
 * until its session ends however it ends (it left, its connection failed or never came within
 * `webrtc_viewer_connect_timeout_ms`, the stream ended), wherever it runs: the end is heard as the
 * `viewer.left` lifecycle event of the thread or node that holds the viewer. (A client's viewers of
 * one stream, `limit_viewers_per_client`, are counted where the stream is: `ViewerRegistry`.)
 */
export class ViewerHolds {
  readonly #held = new Map<string, () => void>();
  /** Viewers whose end came before their hold was taken (a viewer closed at once). */
  readonly #gone = new Set<string>();
  readonly #stop: () => void;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: ViewerHolds): void {
    trackSize('viewer_holds', owner, (self) => self.#held.size);
    trackSize('viewer_holds_gone', owner, (self) => self.#gone.size);
  }

  constructor(follow: (listener: (event: LifecycleEvent) => void) => () => void) {
    ViewerHolds.#trackSizes(this);
    this.#stop = follow((event) => {
      if (event.type === 'viewer.left') this.#left(event.viewerId);
    });
  }

  /** Viewer `id` holds what `release` gives back, until it is gone. */
  hold(id: string, release: () => void): void {
    if (this.#gone.delete(id)) return release();
    this.#held.set(id, release);
  }

  /**
   * The viewer's client ended it (WHEP DELETE): its hold goes even if its end is never heard (the
   * node that held it died).
   */
  ended(id: string): void {
    const release = this.#held.get(id);
    this.#held.delete(id);
    release?.();
  }

  /** Viewers holding a share of their client's quota. */
  get count(): number {
    return this.#held.size;
  }

  close(): void {
    this.#stop();
    for (const release of this.#held.values()) release();
    this.#held.clear();
  }

  #left(id: string): void {
    const release = this.#held.get(id);
    if (release) {
      this.#held.delete(id);
      return release();
    }
    this.#gone.add(id);
    if (this.#gone.size > GONE_KEPT) this.#gone.delete(this.#gone.values().next().value!);
  }
}
