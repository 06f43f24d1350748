import { spsPictureSize } from '../media/h264.js';
import type { VideoFrame } from './frames.js';

/** A byte counter's rate over the last second or so, sampled by the caller about once a second. */
export class RateMeter {
  #last: { atMs: number; bytes: number } | undefined;
  #bitsPerSecond = 0;

  sample(bytes: number, nowMs = Date.now()): void {
    const last = this.#last;
    if (last && nowMs > last.atMs) this.#bitsPerSecond = ((bytes - last.bytes) * 8 * 1000) / (nowMs - last.atMs);
    this.#last = { atMs: nowMs, bytes };
  }

  get kbps(): number {
    return Math.round(this.#bitsPerSecond / 1000);
  }
}

/** The picture size a keyframe says: H.264 from its SPS, VP8 from its frame header; undefined for VP9 or none. */
export function pictureSize(keyframe: VideoFrame | undefined): { width: number; height: number } | undefined {
  if (!keyframe) return undefined;
  try {
    if (keyframe.codec === 'H264') return keyframe.sps ? spsPictureSize(keyframe.sps) : undefined;
    const data = keyframe.bitstream();
    // VP8 (RFC 6386 §9.1): a keyframe's start code 9d 01 2a, then 14-bit width and height.
    if (keyframe.codec === 'VP8' && data.length >= 10 && data[3] === 0x9d && data[4] === 0x01 && data[5] === 0x2a) {
      return { width: data.readUInt16LE(6) & 0x3fff, height: data.readUInt16LE(8) & 0x3fff };
    }
  } catch {
    // an SPS that cannot be read says nothing
  }
  return undefined;
}
