import type { AudioPacket, MediaSink, Publisher } from '../publishers/publisher.js';
import { SinkQueue, type SinkQueueDiscards } from '../publishers/sink-queue.js';
import { RTP_HEADER_SIZE } from '../media/rtp.js';

/**
 * A push's place among its publisher's sinks: it is given the audio packets and the video
 * frames (what came in RTP packets is counted as such) through a bounded queue of its own, and
 * counts the frames the publisher lost while it was attached and those its queue discarded.
 */
export class PublisherInput {
  packets = 0;
  bytes = 0;
  readonly #queue: SinkQueue;
  #attached: { publisher: Publisher; lostAtAttach: number } | undefined;
  #pastLost = 0;

  constructor(route: MediaSink, onError: (error: unknown) => void) {
    this.#queue = new SinkQueue(
      {
        audio: (packet: AudioPacket) => {
          this.packets++;
          this.bytes += RTP_HEADER_SIZE + packet.payload.length;
          route.audio(packet);
        },
        frame: (frame) => {
          this.packets += frame.packets;
          this.bytes += RTP_HEADER_SIZE * frame.packets + frame.bytes;
          route.frame(frame);
        },
      },
      onError,
    );
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

/** Waits until the publisher caches a keyframe to start from (it asks the sender for one). */
export async function cachedKeyframe(publisher: Publisher, timeoutMs: number): Promise<void> {
  if (publisher.hasKeyframe) return;
  await new Promise<void>((resolve, reject) => {
    const timeout = setTimeout(() => finish(new Error('no keyframe arrived from the publisher')), timeoutMs);
    const onKeyframe = (): void => {
      if (publisher.hasKeyframe) finish();
    };
    publisher.on('keyframe', onKeyframe);
    function finish(error?: Error): void {
      clearTimeout(timeout);
      publisher.off('keyframe', onKeyframe);
      if (error) reject(error);
      else resolve();
    }
  });
}
