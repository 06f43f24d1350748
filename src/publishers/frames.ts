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
  /** The RTP packets it came in, and their payloads' bytes. */
  packets: number;
  bytes: number;
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

/** Made once on first need, then the same buffer for every caller. */
function once(make: () => Buffer): () => Buffer {
  let made: Buffer | undefined;
  return () => (made ??= make());
}

/**
 * The stage of a publisher that turns its video RTP into frames, once for every sink: packets are
 * reordered and reassembled (H.264: RFC 6184; VP8: RFC 7741; VP9: RFC 9628) and each frame is timed
 * on the publisher's clock. After a loss, frames resume at the next keyframe, and `onLoss` is told
 * (the publisher asks the sender for one, and forgets the frames it kept to start sinks from).
 */
export class FrameStage {
  readonly #depacketizer: Pick<Depacketizer<PendingFrame, unknown>, 'push' | 'framesLost'>;

  constructor(
    readonly codec: VideoCodec,
    private readonly timeOf: (timestamp: number) => number | undefined,
    private readonly emit: (frame: VideoFrame) => void,
    onLoss: () => void,
  ) {
    const options = { maxWaitMs: REORDER_WAIT_MS, onLoss };
    if (codec === 'H264') this.#depacketizer = new H264Depacketizer((unit, pending) => this.#onUnit(unit, pending), options);
    else if (codec === 'VP8') this.#depacketizer = new Vp8Depacketizer((frame, pending) => this.#onCoded(frame, pending), options);
    else this.#depacketizer = new Vp9Depacketizer((frame, pending) => this.#onCoded(frame, pending), options);
  }

  /** Frames dropped because a packet was lost, since the stream began. */
  get framesLost(): number {
    return this.#depacketizer.framesLost;
  }

  push(packet: MediaPacket): void {
    this.#depacketizer.push(packet);
  }

  #onUnit(unit: AccessUnit, pending: PendingFrame): void {
    this.#add(unit.timestamp, unit.key, pending, { ...parameterSets(unit), flv: once(() => avcFrame(unit)), bitstream: once(() => annexB(unit)) });
  }

  #onCoded(coded: CodedFrame, pending: PendingFrame): void {
    const flv = (): Buffer => {
      throw new Error(`${this.codec} does not go in FLV: it is transcoded`);
    };
    this.#add(coded.timestamp, coded.key, pending, { flv, bitstream: () => coded.data });
  }

  #add(timestamp: number, key: boolean, pending: PendingFrame, payload: Pick<VideoFrame, 'sps' | 'pps' | 'flv' | 'bitstream'>): void {
    const wallclockMs = this.timeOf(timestamp);
    if (wallclockMs === undefined) return;
    this.emit({ codec: this.codec, wallclockMs, key, packets: pending.packets, bytes: pending.bytes, ...payload });
  }
}
