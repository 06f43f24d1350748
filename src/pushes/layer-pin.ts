import { monotonicMs } from '../clock.js';
import type { Logger } from 'pino';
import type { Publisher } from '../publishers/publisher.js';
import { askKeyframe } from './layers.js';

/** How often a layer back is checked for its first keyframe, and how long it is waited for at most. */
const BACK_CHECK_MS = 50;
const BACK_WAIT_MS = 5000;

/** What a pin does to its push. */
export interface PinnedPush {
  /** The layer stopped: the push holds standby; false when it was not up to. */
  away(reason: string): boolean;
  /** The layer is back, from a keyframe of its own: the push goes live again. */
  back(): void;
}

/**
 * A push pinned to one simulcast layer (`layerPolicy: "pin"`). When the browser stops sending it,
 * the engine forwards the next layer down, a picture of another size, which some platforms take
 * for a new stream or refuse mid-broadcast: the push holds standby instead (the last picture sent,
 * and the audio). Once the layer is back, it goes live again from the first keyframe after it.
 */
export class LayerPin {
  #away = false;
  #waiting: NodeJS.Timeout | undefined;
  readonly #onLayer = (layer: number | undefined): void => this.#changed(layer);

  constructor(
    private readonly publisher: Publisher,
    private readonly pinned: number,
    private readonly push: PinnedPush,
    private readonly log: Logger,
  ) {
    publisher.on('layer', this.#onLayer);
  }

  close(): void {
    this.publisher.off('layer', this.#onLayer);
    clearInterval(this.#waiting);
  }

  #changed(layer: number | undefined): void {
    clearInterval(this.#waiting);
    if (layer === this.pinned) {
      if (this.#away) this.#backAtKeyframe();
      return;
    }
    if (this.#away) return;
    this.log.info(
      { layer, pinned: this.pinned },
      'the pinned simulcast layer stopped: holding standby until it is back',
    );
    this.#away = this.push.away(`simulcast layer ${this.pinned} stopped (layerPolicy pin)`);
  }

  /** The engine switched back at a keyframe, which may have come before it said so: the next one is asked for and waited for. */
  #backAtKeyframe(): void {
    const keyframeCame = askKeyframe(this.publisher);
    const since = monotonicMs();
    this.#waiting = setInterval(() => {
      if (!keyframeCame() && monotonicMs() - since < BACK_WAIT_MS) return;
      clearInterval(this.#waiting);
      this.#away = false;
      this.log.info({ layer: this.pinned }, 'the pinned simulcast layer is back: live again');
      this.push.back();
    }, BACK_CHECK_MS);
  }
}
