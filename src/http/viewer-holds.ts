import { trackSize } from '../tracked.js';
import { tooMany } from '../errors.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';

/** Viewers told gone before their offer's answer was back, remembered this many at most. */
const GONE_KEPT = 1024;

/**
 * What each WHEP viewer holds of its client's quota (`limit_sessions_per_client`), from its offer
 * until its session ends however it ends (it left, its connection failed or never came within
 * `webrtc_viewer_connect_timeout_ms`, the stream ended), wherever it runs: the end is heard as the
 * `viewer.left` lifecycle event of the thread or node that holds the viewer. One client address
 * holds at most `limit_viewers_per_client` viewers of a stream (half of its slots by default), so
 * that one client cannot keep a stream from every other viewer.
 */
export class ViewerHolds {
  readonly #held = new Map<string, () => void>();
  /** Viewers whose end came before their hold was taken (a viewer closed at once). */
  readonly #gone = new Set<string>();
  /** Viewers (those asking and those holding) of each client address and stream, by `${client} ${stream}`. */
  readonly #ofClient = new Map<string, number>();
  readonly #stop: () => void;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: ViewerHolds): void {
    trackSize('viewer_holds', owner, (self) => self.#held.size);
    trackSize('viewer_holds_gone', owner, (self) => self.#gone.size);
    trackSize('viewer_holds_by_client', owner, (self) => self.#ofClient.size);
  }

  constructor(
    follow: (listener: (event: LifecycleEvent) => void) => () => void,
    /** Viewers of one stream a client address may hold (`limit_viewers_per_client`). */
    private readonly perClient: number,
  ) {
    ViewerHolds.#trackSizes(this);
    this.#stop = follow((event) => {
      if (event.type === 'viewer.left') this.#left(event.viewerId);
    });
  }

  /**
   * A place for a viewer of `stream` from `client` (429 past the client's share); the function
   * returned gives it back, once, and is what its hold releases.
   */
  take(stream: string, client: string): () => void {
    const key = `${client} ${stream}`;
    const count = this.#ofClient.get(key) ?? 0;
    if (count >= this.perClient)
      throw tooMany(
        `this address already has ${count} viewers of stream ${stream}, its limit (limit_viewers_per_client)`,
      );
    this.#ofClient.set(key, count + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.#ofClient.get(key) ?? 1) - 1;
      if (left > 0) this.#ofClient.set(key, left);
      else this.#ofClient.delete(key);
    };
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
