import type { AudioPacket, MediaSink, Publisher } from '../publishers/publisher.js';
import { RTP_HEADER_SIZE } from '../media/rtp.js';

/**
 * A transponder's place among its publisher's sinks: it is given the audio packets and the video
 * frames (what came in RTP packets is counted as such), and counts the frames the publisher lost
 * while it was attached.
 */
export class PublisherInput {
  packets = 0;
  bytes = 0;
  #attached: { publisher: Publisher; sink: MediaSink; lostAtAttach: number } | undefined;
  #pastLost = 0;

  constructor(private readonly route: MediaSink) {}

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
      audio: (packet: AudioPacket) => {
        this.packets++;
        this.bytes += RTP_HEADER_SIZE + packet.payload.length;
        this.route.audio(packet);
      },
      frame: (frame) => {
        this.packets += frame.packets;
        this.bytes += RTP_HEADER_SIZE * frame.packets + frame.bytes;
        this.route.frame(frame);
      },
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
