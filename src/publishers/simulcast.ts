import { monotonicMs } from '../core/clock.js';
import type { Logger } from 'pino';

/** A simulcast layer's publisher no push holds is let go after this long, by default (ms). */
export const LAYER_IDLE_MS = 30_000;

/** What the layers ask of a layer's publisher. */
export interface LayerPublisher {
  /** Since when no push has held it (monotonic ms), undefined while one does. */
  readonly idleSince: number | undefined;
  /** Asked for (a push goes on to hold it, or only looks at its size): not idle from now. */
  touch(): void;
  close(reason: string, lost?: boolean): Promise<void>;
}

/**
 * A stream's lower simulcast layers: each a publisher of its own (its video, the stream's sound),
 * made at its first use, shared by every push of that layer, let go once no push has held it for
 * `idleMs`, and ended with the stream. The top layer is the stream's own publisher, not kept here.
 */
export class SimulcastLayers<P extends LayerPublisher> {
  /** Each layer asked for, while it is being made and after. */
  readonly #asked = new Map<number, Promise<P>>();
  /** The layers' publishers made, by layer, for the idle check. */
  readonly #made = new Map<number, P>();

  constructor(
    private readonly make: (spatial: number) => Promise<P>,
    private readonly idleMs: number,
    private readonly log: Logger,
  ) {}

  get(spatial: number): Promise<P> {
    let asked = this.#asked.get(spatial);
    if (!asked) {
      asked = this.make(spatial);
      this.#asked.set(spatial, asked);
      asked.then(
        (layer) => this.#made.set(spatial, layer),
        () => this.#asked.delete(spatial),
      );
    }
    this.#made.get(spatial)?.touch();
    return asked;
  }

  /** The layers that have a publisher now, lowest first. */
  get taken(): number[] {
    return [...this.#made.keys()].sort();
  }

  /** Lets go of each layer no push has held for `idleMs`: its consumer and keyframe requests end. */
  releaseIdle(): void {
    if (!this.#made.size) return;
    const now = monotonicMs();
    for (const [spatial, layer] of this.#made) {
      if (layer.idleSince === undefined || now - layer.idleSince < this.idleMs) continue;
      this.#made.delete(spatial);
      this.#asked.delete(spatial);
      this.log.info({ layer: spatial }, 'no push takes this simulcast layer: it is let go');
      void layer.close('no push takes this simulcast layer');
    }
  }

  /** Ends every layer, made or being made, with the stream. */
  close(reason: string, lost: boolean): void {
    for (const layer of this.#asked.values())
      void layer.then(
        (publisher) => publisher.close(reason, lost),
        () => {},
      );
  }
}
