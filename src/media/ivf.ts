import type { VideoCodec } from './codecs.js';

/** IVF's codec tags: ffmpeg's IVF reader maps them to its decoders (H.264 as an Annex B stream, AV1 as OBUs with sizes). */
const FOURCC: Record<VideoCodec, string> = { H264: 'H264', VP8: 'VP80', VP9: 'VP90', AV1: 'AV01' };

/** Timestamps of IVF frames count in 1/90000 s, RTP's video clock. */
export const IVF_CLOCK_RATE = 90000;

/**
 * The 32-byte IVF file header: signature, version 0, header size, codec tag, picture size (0:
 * the decoder reads it from the stream), time base 1/IVF_CLOCK_RATE, frame count (0: a live stream).
 */
export function ivfHeader(codec: VideoCodec): Buffer {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4);
  header.writeUInt16LE(32, 6);
  header.write(FOURCC[codec], 8, 'latin1');
  header.writeUInt32LE(IVF_CLOCK_RATE, 16);
  header.writeUInt32LE(1, 20);
  return header;
}

/** The 12-byte header of an IVF frame of `size` bytes at `pts` (in 1/IVF_CLOCK_RATE s); the frame follows it. */
export function ivfFrameHeader(size: number, pts: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt32LE(size, 0);
  header.writeBigUInt64LE(BigInt(pts), 4);
  return header;
}
