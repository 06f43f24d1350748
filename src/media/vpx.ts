import type { VideoCodec } from './codecs.js';
import { DepacketizedFrame, Depacketizer, type PendingFrame } from './depacketizer.js';
import type { VideoFrame } from './sinks.js';

/** One VP8 or VP9 frame as the decoder reads it. */
export class VpxFrame extends DepacketizedFrame implements VideoFrame {
  /** A VP8 keyframe's picture size, from its frame header (RFC 6386 §9.1: start code 9d 01 2a, then 14-bit width and height). */
  readonly size: { width: number; height: number } | undefined;

  constructor(
    readonly codec: VideoCodec,
    pending: PendingFrame,
    readonly data: Buffer,
  ) {
    super(pending);
    const vp8Keyframe =
      codec === 'VP8' && this.key && data.length >= 10 && data[3] === 0x9d && data[4] === 0x01 && data[5] === 0x2a;
    this.size = vp8Keyframe
      ? { width: data.readUInt16LE(6) & 0x3fff, height: data.readUInt16LE(8) & 0x3fff }
      : undefined;
  }

  bitstream(): Buffer {
    return this.data;
  }
}

interface PendingVpx extends PendingFrame {
  parts: Buffer[];
  /** Its first packet (the start of the frame) was seen. */
  started: boolean;
}

/** Where a VP8 or VP9 payload's data begins, and what its descriptor says of the frame. */
interface Descriptor {
  offset: number;
  /** The packet starts the frame. */
  start: boolean;
  /** The frame is a keyframe (known on its first packet). */
  key: boolean;
}

abstract class VpxDepacketizer extends Depacketizer<PendingVpx> {
  protected abstract readonly codec: VideoCodec;
  protected abstract describe(payload: Buffer): Descriptor | undefined;

  protected start(timestamp: number, captureMs: number): PendingVpx {
    return { timestamp, captureMs, parts: [], key: false, damaged: false, started: false, packets: 0, bytes: 0 };
  }

  protected parse(frame: PendingVpx, payload: Buffer): void {
    const descriptor = this.describe(payload);
    if (!descriptor || descriptor.offset >= payload.length) {
      frame.damaged = true;
      return;
    }
    if (descriptor.start) {
      frame.started = true;
      frame.key = descriptor.key;
    } else if (!frame.started) {
      frame.damaged = true; // its beginning is missing
    }
    frame.parts.push(payload.subarray(descriptor.offset));
  }

  protected complete(frame: PendingVpx): VpxFrame | undefined {
    return frame.parts.length > 0 ? new VpxFrame(this.codec, frame, Buffer.concat(frame.parts)) : undefined;
  }
}

/** RTP (RFC 7741) to VP8 frames: the payload descriptor stripped, the partitions joined. */
export class Vp8Depacketizer extends VpxDepacketizer {
  protected readonly codec = 'VP8';

  protected describe(payload: Buffer): Descriptor | undefined {
    const b0 = payload[0]!;
    let offset = 1;
    if (b0 & 0x80) {
      const x = payload[offset++];
      if (x === undefined) return undefined;
      if (x & 0x80) offset += (payload[offset]! & 0x80) !== 0 ? 2 : 1; // PictureID, 7 or 15 bits
      if (x & 0x40) offset += 1; // TL0PICIDX
      if (x & 0x30) offset += 1; // TID, Y, KEYIDX
    }
    // The start of partition 0 starts the frame; its payload header's P bit is 0 on a keyframe.
    const start = (b0 & 0x10) !== 0 && (b0 & 0x07) === 0;
    const header = payload[offset];
    if (header === undefined) return undefined;
    return { offset, start, key: start && (header & 0x01) === 0 };
  }
}

/** RTP (the VP9 payload format, RFC 9628) to VP9 frames: the payload descriptor stripped. */
export class Vp9Depacketizer extends VpxDepacketizer {
  protected readonly codec = 'VP9';

  protected describe(payload: Buffer): Descriptor | undefined {
    const b0 = payload[0]!;
    const pictureId = (b0 & 0x80) !== 0;
    const interPredicted = (b0 & 0x40) !== 0;
    const layers = (b0 & 0x20) !== 0;
    const flexible = (b0 & 0x10) !== 0;
    const start = (b0 & 0x08) !== 0;
    const scalability = (b0 & 0x02) !== 0;
    let offset = 1;
    if (pictureId) offset += (payload[offset]! & 0x80) !== 0 ? 2 : 1;
    if (layers) offset += flexible ? 1 : 2; // layer indices, and TL0PICIDX in non-flexible mode
    if (flexible && interPredicted) {
      // Reference indices, each with N set while another follows (at most 3).
      for (let i = 0; i < 3; i++) if ((payload[offset++]! & 0x01) === 0) break;
    }
    if (scalability) {
      const ss = payload[offset++];
      if (ss === undefined) return undefined;
      const spatialLayers = (ss >> 5) + 1;
      if (ss & 0x10) offset += 4 * spatialLayers; // widths and heights
      if (ss & 0x08) {
        const groups = payload[offset++] ?? 0;
        for (let i = 0; i < groups && offset < payload.length; i++) offset += 1 + ((payload[offset]! >> 2) & 0x03);
      }
    }
    if (offset > payload.length) return undefined;
    return { offset, start, key: start && !interPredicted };
  }
}
