import { Av1Depacketizer } from './av1.js';
import type { VideoCodec } from './codecs.js';
import { H264Depacketizer } from './h264.js';
import { Vp8Depacketizer, Vp9Depacketizer } from './vpx.js';

/** Each video codec's RTP payload format, read into frames. */
export const DEPACKETIZERS = {
  H264: H264Depacketizer,
  VP8: Vp8Depacketizer,
  VP9: Vp9Depacketizer,
  AV1: Av1Depacketizer,
} as const satisfies Record<VideoCodec, unknown>;
