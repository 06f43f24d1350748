import { z } from 'zod';
import { kbps } from '../fields.js';

/**
 * The AAC audio of pushes (`plane/core.ts`), and the WAV files sounds, overlays and mixers play
 * (`pipeline/overlays.ts`, `mixers/requests.ts`).
 */
export const audioFields = {
  audio_bitrate_kbps: kbps(32, 512, 128, 'AAC bitrate'),
  audio_aac_coder: z
    .enum(['fast', 'twoloop'])
    .default('fast')
    .describe(
      "ffmpeg's AAC coder: `fast` costs under half of `twoloop` and measured no worse at 96-160 kb/s (DESIGN.md)",
    ),
  audio_sample_rate: z
    .union([z.literal(44100), z.literal(48000)])
    .default(48000)
    .describe('AAC sample rate (44100 or 48000)'),
  media_dir: z
    .string()
    .min(1)
    .default('media')
    .describe("WAV files for `sound_on` (relative to the gateway's folder); ships `chime.wav`"),
};
