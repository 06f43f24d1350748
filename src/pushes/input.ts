import type { Publisher } from '../publishers/publisher.js';
import { SinkQueue, type SinkQueueDiscards } from '../publishers/sink-queue.js';
import type { MediaSink } from '../media/sinks.js';

/**
 * A push's place among its publisher's sinks: it is given the audio packets and the video frames
 * through a bounded queue of its own, which counts them as the RTP packets they came in, and counts
 * the frames the publisher lost while it was attached and those its queue discarded.
 */
export class PublisherInput {
  readonly #queue: SinkQueue;
  #attached: { publisher: Publisher; lostAtAttach: number } | undefined;
  #pastLost = 0;

  constructor(route: MediaSink, onError: (error: unknown) => void) {
    this.#queue = new SinkQueue(route, onError);
  }

  /** RTP packets given to the push, and their bytes. */
  get packets(): number {
    return this.#queue.packets;
  }

  get bytes(): number {
    return this.#queue.bytes;
  }

  get attached(): boolean {
    return this.#attached !== undefined;
  }

  /** Frames lost to packet loss while attached. */
  get framesLost(): number {
    const attached = this.#attached;
    return this.#pastLost + (attached ? attached.publisher.framesLost - attached.lostAtAttach : 0);
  }

  /** What its queue discarded because this push did not keep up with the stream. */
  get discarded(): Readonly<SinkQueueDiscards> {
    return this.#queue.discarded;
  }

  /**
   * Attaches to `publisher` (see `Publisher.attach`); true when it starts from the cached keyframe.
   * The media reaches the route from the thread's next turn on, the cached media first.
   */
  attach(publisher: Publisher, fromKeyframe: boolean): boolean {
    this.detach();
    this.#attached = { publisher, lostAtAttach: publisher.framesLost };
    return publisher.attach(this.#queue, fromKeyframe);
  }

  /** Stops taking the publisher's media; what waits in the queue is not delivered. */
  detach(): void {
    const attached = this.#attached;
    if (!attached) return;
    this.#attached = undefined;
    attached.publisher.detach(this.#queue);
    this.#queue.clear();
    this.#pastLost += attached.publisher.framesLost - attached.lostAtAttach;
  }
}
