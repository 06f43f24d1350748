import { BitReader } from './bits.js';
import { DepacketizedFrame, Depacketizer, type PendingFrame } from './depacketizer.js';
import type { VideoFrame } from './sinks.js';
import { EX_VIDEO_HEADER, exVideoBody, FourCc, VideoPacketType, writeExVideoHeader } from './flv.js';

/*
 * AV1 as it comes over RTP (the AOM "RTP Payload Format for AV1") and as Enhanced RTMP, IVF and
 * decoders take it: a temporal unit of OBUs, each with its size field (the low-overhead bitstream
 * format), without temporal delimiters.
 */

/** OBU types (AV1 §6.2.2) this code tells apart. */
const OBU_SEQUENCE_HEADER = 1;
export const OBU_TEMPORAL_DELIMITER = 2;
const OBU_FRAME_HEADER = 3;
const OBU_FRAME = 6;
const OBU_TILE_LIST = 8;

/** An unsigned LEB128 number at `offset` and the bytes it took; undefined when it runs past the end or past 8 bytes. */
export function readLeb128(data: Buffer, offset: number): { value: number; length: number } | undefined {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const byte = data[offset + i];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
  }
  return undefined;
}

/** `value` as unsigned LEB128, in as few bytes as it needs. */
export function leb128(value: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return Buffer.from(bytes);
}

/** One OBU's header fields and where its payload is. */
export interface Obu {
  type: number;
  /** Its header (1 byte, 2 with the extension), as it came. */
  header: Buffer;
  payload: Buffer;
  /** The bytes it took, its size field included. */
  length: number;
}

/**
 * The OBU at the start of `element`: its header, then its payload, read with its own size field when
 * it has one, else to the element's end (an RTP OBU element, whose size is known from outside).
 * Undefined when it does not read (a forbidden bit set, a size past the end).
 */
function readObu(element: Buffer): Obu | undefined {
  const first = element[0];
  if (first === undefined || (first & 0x80) !== 0) return undefined;
  const hasSize = (first & 0x02) !== 0;
  const headerLength = (first & 0x04) !== 0 ? 2 : 1;
  if (element.length < headerLength) return undefined;
  const header = element.subarray(0, headerLength);
  const type = (first >> 3) & 0x0f;
  if (!hasSize) return { type, header, payload: element.subarray(headerLength), length: element.length };
  const size = readLeb128(element, headerLength);
  const start = headerLength + (size?.length ?? 0);
  if (!size || start + size.value > element.length) return undefined;
  return { type, header, payload: element.subarray(start, start + size.value), length: start + size.value };
}

/**
 * The OBUs of a low-overhead bitstream (each with its size field), in order, each with where it
 * ends in `data`; stops at one that does not read.
 */
export function* lowOverheadObus(data: Buffer): Generator<Obu & { end: number }> {
  for (let offset = 0; offset < data.length;) {
    if ((data[offset]! & 0x02) === 0) return; // no size field: only the last OBU of a sample may lack one
    const obu = readObu(data.subarray(offset));
    if (!obu) return;
    offset += obu.length;
    yield { ...obu, end: offset };
  }
}

/** The bytes of `value` as LEB128. */
function leb128Length(value: number): number {
  let length = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) length++;
  return length;
}

/** The bytes the OBU takes written with its size field. */
function sizedLength(obu: Obu): number {
  return obu.header.length + leb128Length(obu.payload.length) + obu.payload.length;
}

/** Writes the OBU with its size field (and the extension it had) into `target` at `at`; the bytes written. */
function writeSizedObu(obu: Obu, target: Buffer, at: number): number {
  let offset = at + obu.header.copy(target, at);
  target[at] = target[at]! | 0x02;
  offset += leb128(obu.payload.length).copy(target, offset);
  offset += obu.payload.copy(target, offset);
  return offset - at;
}

/** The OBU written with its size field (and the extension it had). */
export function sizedObu(obu: Obu): Buffer {
  const sized = Buffer.allocUnsafe(sizedLength(obu));
  writeSizedObu(obu, sized, 0);
  return sized;
}

/** What a sequence header says (AV1 §5.5): what `av1C` carries, and the largest picture. */
export interface Av1Sequence {
  profile: number;
  level: number;
  tier: number;
  highBitdepth: boolean;
  twelveBit: boolean;
  monochrome: boolean;
  subsamplingX: boolean;
  subsamplingY: boolean;
  chromaSamplePosition: number;
  width: number;
  height: number;
  reducedStillPictureHeader: boolean;
}

const CP_BT_709 = 1;
const TC_SRGB = 13;
const MC_IDENTITY = 0;

/** A sequence header OBU's payload read; undefined when it does not read. */
function readSequenceHeader(payload: Buffer): Av1Sequence | undefined {
  try {
    return sequenceHeader(new BitReader(payload));
  } catch {
    return undefined;
  }
}

function sequenceHeader(r: BitReader): Av1Sequence {
  const profile = r.bits(3);
  r.bits(1); // still_picture
  const reducedStillPictureHeader = r.flag();
  let level = 0;
  let tier = 0;
  if (reducedStillPictureHeader) {
    level = r.bits(5);
  } else {
    let decoderModelInfo = false;
    let bufferDelayLength = 0;
    if (r.flag()) {
      // timing_info
      r.bits(32);
      r.bits(32);
      if (r.flag()) r.ue();
      decoderModelInfo = r.flag();
      if (decoderModelInfo) {
        bufferDelayLength = r.bits(5) + 1;
        r.bits(32);
        r.bits(5);
        r.bits(5);
      }
    }
    const initialDisplayDelay = r.flag();
    const operatingPoints = r.bits(5) + 1;
    for (let i = 0; i < operatingPoints; i++) {
      r.bits(12); // operating_point_idc
      const seqLevel = r.bits(5);
      const seqTier = seqLevel > 7 ? r.bits(1) : 0;
      if (i === 0) [level, tier] = [seqLevel, seqTier];
      if (decoderModelInfo && r.flag()) {
        r.bits(bufferDelayLength);
        r.bits(bufferDelayLength);
        r.bits(1);
      }
      if (initialDisplayDelay && r.flag()) r.bits(4);
    }
  }
  const widthBits = r.bits(4) + 1;
  const heightBits = r.bits(4) + 1;
  const width = r.bits(widthBits) + 1;
  const height = r.bits(heightBits) + 1;
  if (!reducedStillPictureHeader && r.flag()) r.bits(7); // frame id lengths
  r.bits(3); // 128x128 superblocks, filter intra, intra edge filter
  if (!reducedStillPictureHeader) {
    r.bits(4); // interintra compound, masked compound, warped motion, dual filter
    const orderHint = r.flag();
    if (orderHint) r.bits(2); // jnt_comp, ref_frame_mvs
    const screenContentTools = r.flag() ? 2 : r.bits(1);
    if (screenContentTools > 0 && !r.flag()) r.bits(1); // seq_force_integer_mv
    if (orderHint) r.bits(3);
  }
  r.bits(3); // superres, cdef, restoration
  // color_config (AV1 §5.5.2)
  const highBitdepth = r.flag();
  const twelveBit = profile === 2 && highBitdepth ? r.flag() : false;
  const monochrome = profile === 1 ? false : r.flag();
  let [primaries, transfer, matrix] = [2, 2, 2];
  if (r.flag()) [primaries, transfer, matrix] = [r.bits(8), r.bits(8), r.bits(8)];
  let subsamplingX = true;
  let subsamplingY = true;
  let chromaSamplePosition = 0;
  if (monochrome) {
    r.bits(1); // color_range
  } else if (primaries === CP_BT_709 && transfer === TC_SRGB && matrix === MC_IDENTITY) {
    [subsamplingX, subsamplingY] = [false, false];
  } else {
    r.bits(1); // color_range
    if (profile === 1) [subsamplingX, subsamplingY] = [false, false];
    else if (profile === 2) {
      if (twelveBit) {
        subsamplingX = r.flag();
        subsamplingY = subsamplingX ? r.flag() : false;
      } else [subsamplingX, subsamplingY] = [true, false];
    }
    if (subsamplingX && subsamplingY) chromaSamplePosition = r.bits(2);
  }
  return {
    ...{ profile, level, tier, highBitdepth, twelveBit, monochrome },
    ...{ subsamplingX, subsamplingY, chromaSamplePosition, width, height, reducedStillPictureHeader },
  };
}

/**
 * The AV1CodecConfigurationRecord (`av1C`, AV1-ISOBMFF §2.3.3) of a sequence header OBU: what
 * Enhanced RTMP's SequenceStart carries. The sequence header follows as its configOBUs, with its
 * size field.
 */
export function av1CodecConfiguration(sequence: Av1Sequence, sequenceHeaderObu: Obu): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x81; // marker, version 1
  head[1] = (sequence.profile << 5) | sequence.level;
  head[2] =
    (sequence.tier << 7) |
    (Number(sequence.highBitdepth) << 6) |
    (Number(sequence.twelveBit) << 5) |
    (Number(sequence.monochrome) << 4) |
    (Number(sequence.subsamplingX) << 3) |
    (Number(sequence.subsamplingY) << 2) |
    sequence.chromaSamplePosition;
  head[3] = 0; // no initial presentation delay
  return Buffer.concat([head, sizedObu(sequenceHeaderObu)]);
}

/**
 * One AV1 temporal unit: its OBUs with their sizes, and, on a keyframe, its sequence header read. It
 * is made as the Enhanced RTMP body that passes it through (CodedFrames, its data the temporal unit
 * without temporal delimiters), the OBUs a view of it; a keyframe's `sequenceHeader` is the
 * SequenceStart body with its `av1C`.
 */
export class Av1Frame extends DepacketizedFrame implements VideoFrame {
  readonly codec = 'AV1';
  readonly size: { width: number; height: number } | undefined;
  /** The temporal unit in the low-overhead format, without temporal delimiters. */
  readonly data: Buffer;
  readonly sequenceHeader: Buffer | undefined;

  constructor(
    pending: PendingFrame,
    /** The Enhanced RTMP body: `EX_VIDEO_HEADER` bytes to be written, then the temporal unit. */
    readonly flv: Buffer,
    /** The sequence header it carries (a keyframe's), read, with the OBU itself. */
    readonly sequence?: { info: Av1Sequence; obu: Obu },
  ) {
    super(pending);
    writeExVideoHeader(flv, VideoPacketType.CodedFrames, FourCc.AV1, pending.key);
    this.data = flv.subarray(EX_VIDEO_HEADER);
    this.size = sequence ? { width: sequence.info.width, height: sequence.info.height } : undefined;
    this.sequenceHeader = sequence
      ? exVideoBody(VideoPacketType.SequenceStart, FourCc.AV1, true, av1CodecConfiguration(sequence.info, sequence.obu))
      : undefined;
  }

  bitstream(): Buffer {
    return this.data;
  }
}

interface PendingAv1 extends PendingFrame {
  /** Its OBUs as they came (views of the packets), and the bytes they take written with their sizes. */
  obus: Obu[];
  obuBytes: number;
  /** An OBU element whose end is in a later packet (Y set), as far as it came, and its bytes. */
  fragment: Buffer[] | undefined;
  fragmentBytes: number;
  sequence: { info: Av1Sequence; obu: Obu } | undefined;
  /** Whether the first frame (header) OBU said KEY_FRAME, once one was seen. */
  keyFrameHeader: boolean | undefined;
}

/** Most OBUs and bytes one temporal unit may hold: a sender past them is sending something else. */
const MAX_OBUS = 256;
const MAX_FRAME_BYTES = 8 * 1024 * 1024;

/**
 * RTP (the AOM AV1 payload format) to AV1 temporal units: each packet's aggregation header (Z: its
 * first element goes on from the last packet; Y: its last element goes on in the next; W: how many
 * elements, the last without a length when W is not 0; N: a new coded video sequence) read, the
 * OBU elements joined across packets, temporal delimiters and tile lists dropped, and each OBU
 * written with its size field. A temporal unit is a keyframe when it carries a sequence header and
 * its first frame header says KEY_FRAME (shown, not a repeat).
 */
export class Av1Depacketizer extends Depacketizer<PendingAv1> {
  protected start(timestamp: number, captureMs: number): PendingAv1 {
    return {
      ...{ timestamp, captureMs, key: false, damaged: false, packets: 0, bytes: 0 },
      ...{
        obus: [],
        obuBytes: 0,
        fragment: undefined,
        fragmentBytes: 0,
        sequence: undefined,
        keyFrameHeader: undefined,
      },
    };
  }

  protected parse(frame: PendingAv1, payload: Buffer): void {
    const aggregation = payload[0]!;
    const continues = (aggregation & 0x80) !== 0;
    const goesOn = (aggregation & 0x40) !== 0;
    const count = (aggregation >> 4) & 0x03;
    if (continues !== (frame.fragment !== undefined)) {
      frame.damaged = true; // a fragment's start or end went missing
      return;
    }
    let offset = 1;
    for (let element = 1; offset < payload.length; element++) {
      let length = payload.length - offset;
      if (count === 0 || element < count) {
        const prefix = readLeb128(payload, offset);
        if (!prefix || offset + prefix.length + prefix.value > payload.length) {
          frame.damaged = true;
          return;
        }
        offset += prefix.length;
        length = prefix.value;
      }
      let data = payload.subarray(offset, offset + length);
      offset += length;
      const last = offset >= payload.length || (count !== 0 && element === count);
      if (element === 1 && frame.fragment) {
        frame.fragment.push(data);
        frame.fragmentBytes += data.length;
        if (frame.fragmentBytes > MAX_FRAME_BYTES) {
          frame.damaged = true;
          return;
        }
        if (last && goesOn) return; // the OBU goes on in the next packet still
        data = Buffer.concat(frame.fragment); // joined once, when its last piece came
        frame.fragment = undefined;
      } else if (last && goesOn) {
        frame.fragment = [data];
        frame.fragmentBytes = data.length;
        return;
      }
      if (data.length > 0) this.#obu(frame, data);
      if (last) return;
    }
  }

  #obu(frame: PendingAv1, element: Buffer): void {
    const obu = readObu(element);
    if (!obu) {
      frame.damaged = true;
      return;
    }
    if (obu.type === OBU_TEMPORAL_DELIMITER || obu.type === OBU_TILE_LIST) return;
    if (obu.type === OBU_SEQUENCE_HEADER && !frame.sequence) {
      const info = readSequenceHeader(obu.payload);
      if (info) frame.sequence = { info, obu };
    }
    if ((obu.type === OBU_FRAME || obu.type === OBU_FRAME_HEADER) && frame.keyFrameHeader === undefined) {
      // show_existing_frame 0, frame_type KEY_FRAME (0), show_frame 1: the header's first four bits (AV1 §5.9.2).
      const first = obu.payload[0];
      frame.keyFrameHeader =
        frame.sequence?.info.reducedStillPictureHeader || (first !== undefined && (first & 0xf0) === 0x10);
    }
    frame.key = frame.sequence !== undefined && frame.keyFrameHeader === true;
    frame.obus.push(obu);
    frame.obuBytes += sizedLength(obu);
    if (frame.obus.length > MAX_OBUS || frame.obuBytes > MAX_FRAME_BYTES) frame.damaged = true;
  }

  protected complete(frame: PendingAv1): Av1Frame | undefined {
    if (frame.fragment || frame.obus.length === 0) return undefined;
    const body = Buffer.allocUnsafe(EX_VIDEO_HEADER + frame.obuBytes);
    let at = EX_VIDEO_HEADER;
    for (const obu of frame.obus) at += writeSizedObu(obu, body, at);
    return new Av1Frame(frame, body, frame.key ? frame.sequence : undefined);
  }
}
