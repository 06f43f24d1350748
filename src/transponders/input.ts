import type { VideoFrame } from '../publishers/frames.js';
import type { MediaSink, Publisher } from '../publishers/publisher.js';
import type { CachedPacket } from '../publishers/start-cache.js';
import { RTP_HEADER_SIZE } from '../media/rtp.js';

/** Where a transponder takes what its publisher sends. */
export interface InputRoute {
  packet(packet: CachedPacket): void;
  frame(frame: VideoFrame): void;
}

/**
 * A transponder's place among its publisher's sinks: it is given every packet (audio for its
 * pipeline; all are counted) and every video frame; counts the frames the publisher lost while it
 * was attached.
 */
export class PublisherInput {
  packets = 0;
  bytes = 0;
  #attached: { publisher: Publisher; sink: MediaSink; lostAtAttach: number } | undefined;
  #pastLost = 0;

  constructor(private readonly route: InputRoute) {}

  get attached(): boolean {
    return this.#attached !== undefined;
  }

  /** Frames lost to packet loss while attached. */
  get framesLost(): number {
    const attached = this.#attached;
    return this.#pastLost + (attached ? attached.publisher.framesLost - attached.lostAtAttach : 0);
  }

  /** Attaches to `publisher` (see `Publisher.attach`); true when it starts from the cached keyframe. */
  attach(publisher: Publisher, fromKeyframe: boolean): boolean {
    this.detach();
    const sink: MediaSink = {
      write: (packet) => {
        this.packets++;
        this.bytes += RTP_HEADER_SIZE + packet.payload.length;
        this.route.packet(packet);
      },
      writeFrame: (frame) => this.route.frame(frame),
    };
    this.#attached = { publisher, sink, lostAtAttach: publisher.framesLost };
    return publisher.attach(sink, fromKeyframe);
  }

  detach(): void {
    const attached = this.#attached;
    if (!attached) return;
    this.#attached = undefined;
    attached.publisher.detach(attached.sink);
    this.#pastLost += attached.publisher.framesLost - attached.lostAtAttach;
  }
}
