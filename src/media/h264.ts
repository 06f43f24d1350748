import { BitReader } from './bits.js';
import { NAL_FU_A, NAL_IDR, NAL_PPS, NAL_SPS, NAL_STAP_A, stapANalUnits } from './codecs.js';
import { DepacketizedFrame, Depacketizer, type PendingFrame } from './depacketizer.js';
import type { VideoFrame } from './sinks.js';

interface PendingUnit extends PendingFrame {
  /** Each NAL unit as the pieces it came in (one, or an FU-A's header and fragments). */
  nals: Buffer[][];
  /** Their bytes, all told. */
  nalBytes: number;
  /** The NAL unit being reassembled from FU-A fragments. */
  fragments?: Buffer[];
}

/** The FLV body's header: frame type and codec, AVCPacketType 1 (NAL units), composition time 0. */
const FLV_AVC_HEADER = 5;
/** FLV's video codec id of AVC, and its frame types. */
const AVC_CODEC_ID = 7;
const KEY_FRAME = 1;
const INTER_FRAME = 2;

/** One H.264 picture: its NAL units without start codes, in decoding order, as views of its FLV body. */
export class H264Frame extends DepacketizedFrame implements VideoFrame {
  readonly codec = 'H264';
  readonly sequenceHeader: Buffer | undefined;
  #annexB: Buffer | undefined;

  constructor(
    pending: PendingFrame,
    readonly nals: Buffer[],
    readonly flv: Buffer,
    readonly sps?: Buffer,
    readonly pps?: Buffer,
    readonly size?: { width: number; height: number },
  ) {
    super(pending);
    this.sequenceHeader = sps && pps ? avcSequenceHeader(sps, pps) : undefined;
  }

  bitstream(): Buffer {
    return (this.#annexB ??= annexB(this.nals));
  }
}

/** RTP (RFC 6184, packetization-mode 1: single NAL units, STAP-A, FU-A) to H.264 frames. */
export class H264Depacketizer extends Depacketizer<PendingUnit> {
  /** The latest SPS read, and the size it codes (undefined: it does not read). */
  #sizeRead: { sps: Buffer; size: { width: number; height: number } | undefined } | undefined;

  protected start(timestamp: number, captureMs: number): PendingUnit {
    return { timestamp, captureMs, nals: [], nalBytes: 0, key: false, damaged: false, packets: 0, bytes: 0 };
  }

  protected parse(frame: PendingUnit, payload: Buffer): void {
    const type = payload[0]! & 0x1f;
    if (type >= 1 && type <= 23) this.#addNal(frame, [payload]);
    else if (type === NAL_STAP_A) for (const nal of stapANalUnits(payload)) this.#addNal(frame, [nal]);
    else if (type === NAL_FU_A && payload.length > 2) {
      const header = payload[1]!;
      if (header & 0x80) frame.fragments = [Buffer.from([(payload[0]! & 0xe0) | (header & 0x1f)]), payload.subarray(2)];
      else if (frame.fragments) frame.fragments.push(payload.subarray(2));
      else frame.damaged = true; // a fragment whose start is missing
      if (header & 0x40 && frame.fragments) {
        this.#addNal(frame, frame.fragments);
        frame.fragments = undefined;
      }
    }
  }

  protected complete(frame: PendingUnit): H264Frame | undefined {
    if (frame.fragments) {
      frame.damaged = true; // its last fragment never came
      return undefined;
    }
    if (frame.nals.length === 0) return undefined;
    // The FLV body is made here, in one copy of the packets' payloads: each NAL unit after its
    // 4-byte length. The NAL units are views of it, so nothing is copied twice.
    const flv = Buffer.allocUnsafe(FLV_AVC_HEADER + 4 * frame.nals.length + frame.nalBytes);
    flv[0] = ((frame.key ? KEY_FRAME : INTER_FRAME) << 4) | AVC_CODEC_ID;
    flv.fill(0, 1, FLV_AVC_HEADER);
    flv[1] = 1; // AVCPacketType 1: NAL units
    const nals: Buffer[] = [];
    let offset = FLV_AVC_HEADER;
    for (const parts of frame.nals) {
      const start = offset + 4;
      offset = start;
      for (const part of parts) offset += part.copy(flv, offset);
      flv.writeUInt32BE(offset - start, start - 4);
      nals.push(flv.subarray(start, offset));
    }
    const sps = nals.find((nal) => (nal[0]! & 0x1f) === NAL_SPS);
    const pps = nals.find((nal) => (nal[0]! & 0x1f) === NAL_PPS);
    return new H264Frame(frame, nals, flv, sps, pps, sps && this.#sizeOf(sps));
  }

  /** The picture size an SPS codes, read once per SPS the stream sends; undefined when it does not read. */
  #sizeOf(sps: Buffer): { width: number; height: number } | undefined {
    if (this.#sizeRead?.sps.equals(sps)) return this.#sizeRead.size;
    let size: { width: number; height: number } | undefined;
    try {
      size = spsPictureSize(sps);
    } catch {
      size = undefined;
    }
    this.#sizeRead = { sps, size };
    return size;
  }

  #addNal(frame: PendingUnit, parts: Buffer[]): void {
    frame.nals.push(parts);
    for (const part of parts) frame.nalBytes += part.length;
    if ((parts[0]![0]! & 0x1f) === NAL_IDR) frame.key = true;
  }
}

/** NAL units as an H.264 Annex B byte stream: each after a start code. */
function annexB(nals: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const nal of nals) parts.push(START_CODE, nal);
  return Buffer.concat(parts);
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

/** The AVC sequence header as an FLV video tag body: frame type key, AVCPacketType 0, the decoder configuration record. */
export function avcSequenceHeader(sps: Buffer, pps: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(KEY_FRAME << 4) | AVC_CODEC_ID, 0, 0, 0, 0]), avcDecoderConfiguration(sps, pps)]);
}

/** AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1) for one SPS and one PPS. */
export function avcDecoderConfiguration(sps: Buffer, pps: Buffer): Buffer {
  const head = Buffer.from([1, sps[1]!, sps[2]!, sps[3]!, 0xff, 0xe1]);
  const spsLength = Buffer.alloc(2);
  spsLength.writeUInt16BE(sps.length);
  const ppsLength = Buffer.alloc(3);
  ppsLength[0] = 1;
  ppsLength.writeUInt16BE(pps.length, 1);
  return Buffer.concat([head, spsLength, sps, ppsLength, pps]);
}

/** Picture size coded in an SPS, cropping applied (ITU-T H.264 §7.3.2.1.1). */
export function spsPictureSize(sps: Buffer): { width: number; height: number } {
  const r = new BitReader(unescape(sps.subarray(1)));
  const profile = r.bits(8);
  r.bits(16); // constraint flags, level
  r.ue(); // seq_parameter_set_id
  let chromaFormat = 1;
  if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profile)) {
    chromaFormat = r.ue();
    if (chromaFormat === 3) r.bits(1);
    r.ue(); // bit_depth_luma_minus8
    r.ue(); // bit_depth_chroma_minus8
    r.bits(1);
    if (r.bits(1)) {
      for (let i = 0; i < (chromaFormat !== 3 ? 8 : 12); i++) if (r.bits(1)) skipScalingList(r, i < 6 ? 16 : 64);
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) r.ue();
  else if (pocType === 1) {
    r.bits(1);
    r.se();
    r.se();
    const cycle = r.ue();
    for (let i = 0; i < cycle; i++) r.se();
  }
  r.ue(); // max_num_ref_frames
  r.bits(1);
  const widthMbs = r.ue() + 1;
  const heightUnits = r.ue() + 1;
  const frameMbsOnly = r.bits(1);
  if (!frameMbsOnly) r.bits(1);
  r.bits(1);
  let crop = [0, 0, 0, 0];
  if (r.bits(1)) crop = [r.ue(), r.ue(), r.ue(), r.ue()];
  const cropX = chromaFormat === 0 || chromaFormat === 3 ? 1 : 2;
  const cropY = (chromaFormat === 1 ? 2 : 1) * (2 - frameMbsOnly);
  return {
    width: widthMbs * 16 - cropX * (crop[0]! + crop[1]!),
    height: (2 - frameMbsOnly) * heightUnits * 16 - cropY * (crop[2]! + crop[3]!),
  };
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** Removes emulation prevention bytes (00 00 03 → 00 00). */
function unescape(rbsp: Buffer): Buffer {
  const out = Buffer.alloc(rbsp.length);
  let length = 0;
  for (let i = 0; i < rbsp.length; i++) {
    if (i >= 2 && rbsp[i] === 3 && rbsp[i - 1] === 0 && rbsp[i - 2] === 0) continue;
    out[length++] = rbsp[i]!;
  }
  return out.subarray(0, length);
}
