import { monotonicMs } from '../core/clock.js';
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
 * A push held to its simulcast layer. When the browser stops sending it, the engine forwards
 * another layer, a picture of another size: the next one down, or, when there is none below with
 * media, the lowest one above. Pinned (`layerPolicy: "pin"`), the push takes neither; otherwise
 * (`"switch"`) it takes the one down but never one above: a destination asked for a smaller
 * picture (and its bitrate) is not sent a larger one, and some platforms take a size change for a
 * new stream or refuse it mid-broadcast. Meanwhile the push holds standby (the last picture sent,
 * and the audio); once a layer it takes is back, it goes live again from the first keyframe after it.
 */
export class LayerPin {
  #away = false;
  #waiting: NodeJS.Timeout | undefined;
  readonly #onLayer = (layer: number | undefined): void => this.#changed(layer);

  constructor(
    private readonly publisher: Publisher,
    private readonly pinned: number,
    /** Only this layer (`pin`), or it and those below (`switch`). */
    private readonly policy: 'pin' | 'switch',
    private readonly push: PinnedPush,
    private readonly log: Logger,
  ) {
    publisher.on('layer', this.#onLayer);
  }

  close(): void {
    this.publisher.off('layer', this.#onLayer);
    clearInterval(this.#waiting);
  }

  /** Whether the push may send `layer`. */
  #takes(layer: number | undefined): boolean {
    return this.policy === 'pin' ? layer === this.pinned : layer !== undefined && layer <= this.pinned;
  }

  #changed(layer: number | undefined): void {
    clearInterval(this.#waiting);
    if (this.#takes(layer)) {
      if (this.#away) this.#backAtKeyframe();
      return;
    }
    // Switching, with no layer forwarded at all: nothing larger is sent either (the media timeout judges a silence).
    if (this.#away || (layer === undefined && this.policy === 'switch')) return;
    this.log.info(
      { layer, pinned: this.pinned, policy: this.policy },
      this.policy === 'pin'
        ? 'the pinned simulcast layer stopped: holding standby until it is back'
        : 'the simulcast layer stopped with none below it: holding standby rather than sending a larger picture',
    );
    this.#away = this.push.away(
      this.policy === 'pin'
        ? `simulcast layer ${this.pinned} stopped (layerPolicy pin)`
        : `simulcast layer ${this.pinned} stopped and only larger ones are sent`,
    );
  }

  /** The engine switched back at a keyframe, which may have come before it said so: the next one is asked for and waited for. */
  #backAtKeyframe(): void {
    const keyframeCame = askKeyframe(this.publisher);
    const since = monotonicMs();
    this.#waiting = setInterval(() => {
      if (!keyframeCame() && monotonicMs() - since < BACK_WAIT_MS) return;
      clearInterval(this.#waiting);
      this.#away = false;
      this.log.info({ layer: this.publisher.currentLayer }, 'the simulcast layer is back: live again');
      this.push.back();
    }, BACK_CHECK_MS);
  }
}
