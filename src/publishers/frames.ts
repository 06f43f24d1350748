import { avcFrame } from '../media/flv.js';
import { H264Depacketizer, parameterSets, type AccessUnit } from '../media/h264.js';
import type { MediaPacket } from '../media/rtp.js';

/** A complete H.264 picture on the publisher's clock, made once per publisher and shared by every sink. */
export interface VideoFrame {
  /** Capture time on the publisher's clock (ms). */
  wallclockMs: number;
  key: boolean;
  unit: AccessUnit;
  /** SPS and PPS, when the frame carries them (a keyframe does). */
  sps?: Buffer;
  pps?: Buffer;
  /** The frame as an FLV video tag body (AVCPacketType 1), made once on first need. */
  flv(): Buffer;
}

/** How long the depacketizer waits for a missing video packet (a NACK retransmission). */
const REORDER_WAIT_MS = 100;
/** Frames cached since the last keyframe at most (~10 s at 30 fps); a longer GOP is not cached. */
const MAX_GOP_FRAMES = 300;

/**
 * The stage of a publisher that turns its H.264 RTP into frames, once for every sink: packets are
 * reordered and reassembled (RFC 6184), each frame is timed on the publisher's clock, and the
 * frames since the last keyframe are kept, so a new sink starts from a keyframe at once. After a
 * loss, frames resume at the next keyframe, and `onLoss` asks the sender for one.
 */
export class FrameStage {
  #gop: VideoFrame[] = [];
  readonly #depacketizer: H264Depacketizer;

  constructor(
    private readonly timeOf: (timestamp: number) => number | undefined,
    private readonly emit: (frame: VideoFrame) => void,
    onLoss: () => void,
  ) {
    this.#depacketizer = new H264Depacketizer((unit) => this.#onUnit(unit), { maxWaitMs: REORDER_WAIT_MS, onLoss });
  }

  /** Frames dropped because a packet was lost, since the stream began. */
  get framesLost(): number {
    return this.#depacketizer.framesLost;
  }

  /** Capture time of the keyframe a new sink would start from, if one is cached. */
  get keyframeMs(): number | undefined {
    return this.#gop[0]?.wallclockMs;
  }

  push(packet: MediaPacket): void {
    const lost = this.#depacketizer.framesLost;
    this.#depacketizer.push(packet);
    if (this.#depacketizer.framesLost !== lost) this.#gop = []; // what follows the loss does not decode
  }

  /** Writes the frames since the last keyframe, oldest first; false when none is cached. */
  replay(write: (frame: VideoFrame) => void): boolean {
    for (const frame of this.#gop) write(frame);
    return this.#gop.length > 0;
  }

  clear(): void {
    this.#gop = [];
  }

  #onUnit(unit: AccessUnit): void {
    const wallclockMs = this.timeOf(unit.timestamp);
    if (wallclockMs === undefined) return;
    let body: Buffer | undefined;
    const frame: VideoFrame = { wallclockMs, key: unit.key, unit, ...parameterSets(unit), flv: () => (body ??= avcFrame(unit)) };
    if (unit.key) this.#gop = [frame];
    else if (this.#gop.length > 0 && this.#gop.length < MAX_GOP_FRAMES) this.#gop.push(frame);
    else this.#gop = [];
    this.emit(frame);
  }
}
