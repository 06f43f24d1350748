import type { VideoCodec } from '../media/codecs.js';
import type { Depacketizer, PendingFrame } from '../media/depacketizer.js';
import { avcFrame } from '../media/flv.js';
import { annexB, H264Depacketizer, parameterSets, type AccessUnit } from '../media/h264.js';
import type { MediaPacket } from '../media/rtp.js';
import { Vp8Depacketizer, Vp9Depacketizer, type CodedFrame } from '../media/vpx.js';

/** A complete picture on the publisher's clock, made once per publisher and shared by every sink. */
export interface VideoFrame {
  codec: VideoCodec;
  /** Capture time on the publisher's clock (ms). */
  wallclockMs: number;
  key: boolean;
  /** H.264's SPS and PPS, when the frame carries them (a keyframe does). */
  sps?: Buffer;
  pps?: Buffer;
  /** The frame as an FLV video tag body (AVCPacketType 1; H.264 only), made once on first need. */
  flv(): Buffer;
  /** The frame as its decoder reads it (Annex B for H.264), made once on first need. */
  bitstream(): Buffer;
}

/** How long the depacketizer waits for a missing video packet (a NACK retransmission). */
const REORDER_WAIT_MS = 100;
/** Frames cached since the last keyframe at most (~10 s at 30 fps); a longer GOP is not cached. */
const MAX_GOP_FRAMES = 300;

/** Made once on first need, then the same buffer for every caller. */
function once(make: () => Buffer): () => Buffer {
  let made: Buffer | undefined;
  return () => (made ??= make());
}

/**
 * The stage of a publisher that turns its video RTP into frames, once for every sink: packets are
 * reordered and reassembled (H.264: RFC 6184; VP8: RFC 7741; VP9: RFC 9628), each frame is timed
 * on the publisher's clock, and the frames since the last keyframe are kept, so a new sink starts
 * from a keyframe at once. After a loss, frames resume at the next keyframe, and `onLoss` asks the
 * sender for one.
 */
export class FrameStage {
  #gop: VideoFrame[] = [];
  readonly #depacketizer: Pick<Depacketizer<PendingFrame, unknown>, 'push' | 'framesLost'>;

  constructor(
    readonly codec: VideoCodec,
    private readonly timeOf: (timestamp: number) => number | undefined,
    private readonly emit: (frame: VideoFrame) => void,
    onLoss: () => void,
  ) {
    const options = { maxWaitMs: REORDER_WAIT_MS, onLoss };
    if (codec === 'H264') this.#depacketizer = new H264Depacketizer((unit) => this.#onUnit(unit), options);
    else if (codec === 'VP8') this.#depacketizer = new Vp8Depacketizer((frame) => this.#onCoded(frame), options);
    else this.#depacketizer = new Vp9Depacketizer((frame) => this.#onCoded(frame), options);
  }

  /** The latest keyframe, while the frames since it are kept. */
  get keyframe(): VideoFrame | undefined {
    return this.#gop[0];
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
    this.#add(unit.timestamp, unit.key, { ...parameterSets(unit), flv: once(() => avcFrame(unit)), bitstream: once(() => annexB(unit)) });
  }

  #onCoded(coded: CodedFrame): void {
    const flv = (): Buffer => {
      throw new Error(`${this.codec} does not go in FLV: it is transcoded`);
    };
    this.#add(coded.timestamp, coded.key, { flv, bitstream: () => coded.data });
  }

  #add(timestamp: number, key: boolean, payload: Pick<VideoFrame, 'sps' | 'pps' | 'flv' | 'bitstream'>): void {
    const wallclockMs = this.timeOf(timestamp);
    if (wallclockMs === undefined) return;
    const frame: VideoFrame = { codec: this.codec, wallclockMs, key, ...payload };
    if (key) this.#gop = [frame];
    else if (this.#gop.length > 0 && this.#gop.length < MAX_GOP_FRAMES) this.#gop.push(frame);
    else this.#gop = [];
    this.emit(frame);
  }
}
