/**
 * FLV tag bodies (Adobe FLV and F4V specification 10.1, annex E), as RTMP carries them. H.264's own
 * are made where it is depacketized (`h264.ts`).
 */

export const FlvTagType = { AUDIO: 8, VIDEO: 9, SCRIPT: 18 } as const;

/**
 * A video keyframe as an H.264 Annex B byte stream a decoder can start from: the parameter sets of
 * the AVC sequence header `header`, then the NAL units of the keyframe tag `frame` (both FLV video
 * tag bodies), each after a start code.
 */
export function annexBKeyframe(header: Buffer, frame: Buffer): Buffer {
  const record = header.subarray(5);
  if (record.length < 7) throw new Error('AVC sequence header too short');
  const lengthSize = (record[4]! & 0x03) + 1;
  const nals: Buffer[] = [];
  let offset = 5;
  // SPS count (low 5 bits), then the PPS count as a whole byte.
  for (const countMask of [0x1f, 0xff]) {
    const count = record[offset]! & countMask;
    offset += 1;
    for (let i = 0; i < count; i++) {
      const length = record.readUInt16BE(offset);
      nals.push(record.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
  }
  for (let at = 5; at + lengthSize <= frame.length;) {
    const length = frame.readUIntBE(at, lengthSize);
    nals.push(frame.subarray(at + lengthSize, at + lengthSize + length));
    at += lengthSize + length;
  }
  const startCode = Buffer.from([0, 0, 0, 1]);
  return Buffer.concat(nals.flatMap((nal) => [startCode, nal]));
}

export interface FlvTag {
  type: number;
  /** Milliseconds. */
  timestamp: number;
  body: Buffer;
}

/**
 * Enhanced RTMP's video bodies (veovera enhanced-rtmp v2, "Enhanced Video"): the first byte has
 * IsExHeader (0x80), the frame type (3 bits) and the packet type (4 bits); the codec's FourCC
 * follows, then the packet's data. AV1's and VP9's frames carry no composition time.
 */
export const FourCc = { AV1: 'av01', VP9: 'vp09', HEVC: 'hvc1' } as const;
export type FourCc = (typeof FourCc)[keyof typeof FourCc];

export const VideoPacketType = { SequenceStart: 0, CodedFrames: 1, SequenceEnd: 2, CodedFramesX: 3 } as const;
export type VideoPacketType = (typeof VideoPacketType)[keyof typeof VideoPacketType];

const IS_EX_HEADER = 0x80;
const KEY_FRAME = 1;
const INTER_FRAME = 2;
/** Bytes before an Enhanced RTMP video packet's data: the first byte and the FourCC. */
export const EX_VIDEO_HEADER = 5;

/** The FourCC as `onMetaData`'s `videocodecid` gives it: its four bytes read as one big-endian number. */
export const fourCcNumber = (fourCc: FourCc): number => Buffer.from(fourCc, 'latin1').readUInt32BE(0);

/**
 * Writes the Enhanced RTMP video header into the first `EX_VIDEO_HEADER` bytes of `body`: `key` for a
 * keyframe, and for a sequence start or end.
 */
export function writeExVideoHeader(body: Buffer, packetType: VideoPacketType, fourCc: FourCc, key: boolean): Buffer {
  body[0] = IS_EX_HEADER | ((key ? KEY_FRAME : INTER_FRAME) << 4) | packetType;
  body.write(fourCc, 1, 'latin1');
  return body;
}

/** An Enhanced RTMP video body whose data is `data` (copied once). */
export function exVideoBody(packetType: VideoPacketType, fourCc: FourCc, key: boolean, data: Buffer): Buffer {
  const body = Buffer.allocUnsafe(EX_VIDEO_HEADER + data.length);
  data.copy(body, EX_VIDEO_HEADER);
  return writeExVideoHeader(body, packetType, fourCc, key);
}

/** What an Enhanced RTMP video body is: its packet type and FourCC; undefined for a legacy body. */
export function readExVideoHeader(body: Buffer): { packetType: number; fourCc: string; key: boolean } | undefined {
  const first = body[0];
  if (first === undefined || (first & IS_EX_HEADER) === 0 || body.length < EX_VIDEO_HEADER) return undefined;
  return { packetType: first & 0x0f, fourCc: body.toString('latin1', 1, 5), key: ((first >> 4) & 0x07) === KEY_FRAME };
}

/**
 * What an FLV audio tag body is, read from its first two bytes (AAC: the second byte is the packet
 * type, 0 a sequence header): the one place these bits are read.
 */
export const isSequenceHeader = (body: Buffer): boolean => body[1] === 0;
/** A video body that configures its decoder: AVC's sequence header, or Enhanced RTMP's SequenceStart. */
export const isVideoSequenceHeader = (body: Buffer): boolean =>
  (body[0]! & IS_EX_HEADER) === 0 ? body[1] === 0 : (body[0]! & 0x0f) === VideoPacketType.SequenceStart;
/** A video body of a keyframe (frame type 1), sequence headers included, in either header. */
export const isKeyframeBody = (body: Buffer): boolean => ((body[0]! >> 4) & 0x07) === KEY_FRAME;
/** A video body that is a picture: AVC's NAL units, or Enhanced RTMP's coded frames. */
const isPictureBody = (body: Buffer): boolean =>
  (body[0]! & IS_EX_HEADER) === 0
    ? body[1] === 1
    : (body[0]! & 0x0f) === VideoPacketType.CodedFrames || (body[0]! & 0x0f) === VideoPacketType.CodedFramesX;
/** A video tag that is a picture (not a sequence header). */
export const isVideoFrameTag = (tag: FlvTag): boolean => tag.type === FlvTagType.VIDEO && isPictureBody(tag.body);
/** A video tag that is a keyframe's picture. */
export const isKeyframeTag = (tag: FlvTag): boolean => isVideoFrameTag(tag) && isKeyframeBody(tag.body);
/** An audio tag that is a frame (not the AAC sequence header). */
export const isAudioFrameTag = (tag: FlvTag): boolean => tag.type === FlvTagType.AUDIO && tag.body[1] === 1;
/** An audio tag that is the AAC sequence header. */
export const isAudioHeaderTag = (tag: FlvTag): boolean => tag.type === FlvTagType.AUDIO && isSequenceHeader(tag.body);

/**
 * ffmpeg writes a tag's timestamp as a signed 32-bit number, its top bit cleared: it wraps at 2^31 ms
 * (24 days 20 h 31 min) to 0.
 */
const FFMPEG_FLV_WRAP = 2 ** 31;

/**
 * Reads FLV tags from a byte stream (ffmpeg's `-f flv pipe:1`) as they complete. Timestamps are
 * unwrapped against the tag before (a step of less than 2^30 ms either way), so a push's ffmpeg
 * that runs for more than 24.9 days goes on at 2^31 ms and beyond, not back at 0.
 */
export class FlvReader {
  #buffer: Buffer = Buffer.alloc(0);
  #headerRead = false;
  /** The tag before's timestamp as written, and unwrapped. */
  #lastWritten: number | undefined;
  #lastTimestamp = 0;

  push(data: Buffer): FlvTag[] {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, data]) : data;
    const tags: FlvTag[] = [];
    if (!this.#headerRead) {
      if (this.#buffer.length < 13) return tags;
      if (this.#buffer.toString('latin1', 0, 3) !== 'FLV') throw new Error('not an FLV stream');
      const headerSize = this.#buffer.readUInt32BE(5);
      this.#buffer = this.#buffer.subarray(headerSize + 4); // header and PreviousTagSize0
      this.#headerRead = true;
    }
    for (;;) {
      const b = this.#buffer;
      if (b.length < 11) break;
      const size = b.readUIntBE(1, 3);
      if (b.length < 11 + size + 4) break;
      const written = (b.readUIntBE(4, 3) | (b[7]! << 24)) >>> 0;
      tags.push({ type: b[0]! & 0x1f, timestamp: this.#unwrap(written), body: b.subarray(11, 11 + size) });
      this.#buffer = b.subarray(11 + size + 4);
    }
    return tags;
  }

  #unwrap(written: number): number {
    if (this.#lastWritten === undefined) {
      this.#lastWritten = this.#lastTimestamp = written;
      return written;
    }
    let step = (written - this.#lastWritten) % FFMPEG_FLV_WRAP;
    if (step >= FFMPEG_FLV_WRAP / 2) step -= FFMPEG_FLV_WRAP;
    else if (step < -FFMPEG_FLV_WRAP / 2) step += FFMPEG_FLV_WRAP;
    this.#lastWritten = written;
    this.#lastTimestamp += step;
    return this.#lastTimestamp;
  }
}

/** The FLV file header (version 1, audio and video flagged) and PreviousTagSize0. */
export function flvFileHeader(): Buffer {
  return Buffer.from([0x46, 0x4c, 0x56, 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]);
}

/** One tag of an FLV byte stream, its PreviousTagSize after it; the timestamp in ms, extended past 24 bits. */
export function flvTag(type: number, timestamp: number, body: Buffer): Buffer {
  const head = Buffer.alloc(11);
  head[0] = type;
  head.writeUIntBE(body.length, 1, 3);
  const ts = timestamp >>> 0;
  head.writeUIntBE(ts & 0xffffff, 4, 3);
  head[7] = ts >>> 24;
  const size = Buffer.alloc(4);
  size.writeUInt32BE(11 + body.length);
  return Buffer.concat([head, body, size]);
}
