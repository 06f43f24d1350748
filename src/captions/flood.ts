import { monotonicMs } from '../core/clock.js';
import { tooMany } from '../core/errors.js';
import { trackSize } from '../core/tracked.js';

/** Captions one client may send in a second, over REST and the SDK together. */
const PER_SECOND = 20;
const WINDOW_MS = 1000;
/** Client addresses remembered at most; the one seen longest ago is forgotten first. */
const MAX_CLIENTS = 10_000;

/**
 * Holds each client to `PER_SECOND` captions a second: a caption past it is refused with 429, and
 * never reaches a stream (a flood would only queue pairs that 608's pace sends seconds later).
 */
export class CaptionFlood {
  /** Per client: when its current one-second window began, and the captions counted in it. */
  readonly #windows = new Map<string, { from: number; count: number }>();

  /** Counts its map in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: CaptionFlood): void {
    trackSize('caption_clients', owner, (self) => self.#windows.size);
  }

  constructor(private readonly now: () => number = monotonicMs) {
    CaptionFlood.#trackSizes(this);
  }

  /** Counts a caption of `client`; throws 429 when it is past its share of this second. */
  take(client: string): void {
    const at = this.now();
    let window = this.#windows.get(client);
    if (!window || at - window.from >= WINDOW_MS) window = { from: at, count: 0 };
    this.#windows.delete(client);
    this.#windows.set(client, window);
    if (this.#windows.size > MAX_CLIENTS) this.#windows.delete(this.#windows.keys().next().value!);
    if (window.count >= PER_SECOND) throw tooMany(`more than ${PER_SECOND} captions a second from this address`, 1);
    window.count++;
  }
}
