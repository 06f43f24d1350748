import { z } from 'zod';
import { ms, kbps } from '../fields.js';

/**
 * The ffmpeg each push runs (`ffmpeg/supervisor.ts`, `pushes/push.ts`) and the video it transcodes when
 * a push asks for it (`plane/core.ts`).
 */
export const transcodingFields = {
  ffmpeg_path: z.string().min(1).default('ffmpeg').describe('ffmpeg binary'),
  ffmpeg_stop_timeout_ms: ms(100, 60_000, 2000, 'wait per stop step (`q`, SIGINT, SIGKILL)'),
  ffmpeg_start_timeout_ms: ms(
    1000,
    60_000,
    10_000,
    'a push without a keyframe from its publisher, or without output from ffmpeg, after this long fails',
  ),
  transcoding_enabled: z
    .boolean()
    .default(true)
    .describe(
      'off: a startup that needs transcoding (VP8/VP9/AV1 source, height, fps, keyFrameInterval, videoBitrate, overlays) answers 400',
    ),
  transcoding_keep_aspect_ratio: z
    .boolean()
    .default(true)
    .describe('a requested height keeps the aspect (even width); off: width and height are both applied'),
  transcoding_video_bitrate_kbps: kbps(100, 50_000, 2500, 'bitrate of transcoded video'),
  transcoding_preset: z
    .enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium'])
    .default('superfast')
    .describe('libx264 preset (superfast: a quarter less CPU than veryfast, SSIM 0.989 against 0.992; DESIGN.md)'),
};
