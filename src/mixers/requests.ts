import { z } from 'zod';
import { overlaysSchema } from '../pipeline/overlays.js';
import { streamNameSchema } from '../publishers/stream-name.js';
import { LAYOUTS, MAX_MIXER_INPUTS, PIP_CORNERS } from './layout.js';

/**
 * What the mixer API takes (Web Call Server's `/rest-api/mixer/*` bodies, where it has the field:
 * `uri`, `localStreamName`, `remoteStreamName`, `hasAudio`, `hasVideo`; the layout, size and
 * levels are this gateway's own).
 */

/** A mixer is named by its URI, `mixer://name`. */
export const mixerUriSchema = z
  .string()
  .max(80)
  .regex(/^mixer:\/\/[A-Za-z0-9._-]{1,64}$/, 'must be mixer://name, the name of letters, digits, dot, dash and underscore (at most 64)');

/** A mixer's name: its URI without `mixer://`, and the default name of its stream. */
export const mixerName = (uri: string): string => uri.slice('mixer://'.length);

const layoutSchema = z.enum(LAYOUTS);

const pipSchema = z.strictObject({
  corner: z.enum(PIP_CORNERS).default('bottom-right'),
  size: z.number().min(0.1).max(0.5).default(0.25).describe('the insets width, as a fraction of the output width'),
});

const even = (min: number, max: number): z.ZodNumber => z.number().int().min(min).max(max).multipleOf(2, 'must be even');

export const mixerStartupSchema = z.strictObject({
  uri: mixerUriSchema,
  /** The stream the mixer publishes; the mixer's name by default. */
  localStreamName: streamNameSchema.optional(),
  hasVideo: z.literal(true, { error: 'a mixer always makes video' }).optional(),
  hasAudio: z.boolean().optional(),
  layout: layoutSchema.default('grid'),
  pip: pipSchema.optional(),
  width: even(160, 1920).default(1280),
  height: even(120, 1080).default(720),
  fps: z.number().int().min(1).max(60).default(30),
  videoBitrate: z.number().int().min(100).max(20000).default(2500).describe('kb/s'),
  audioBitrate: z.number().int().min(16).max(256).default(96).describe('kb/s (Opus)'),
  background: z.string().min(1).max(255).default('#000000').describe('a #rrggbb colour, or an image file (PNG or JPEG) of media_dir, scaled to fill the picture'),
  watermark: z.string().min(1).max(255).optional().describe("an image file of media_dir at the picture's top right (Web Call Server's watermark)"),
  overlays: overlaysSchema.optional(),
});

/** Text written over an input's picture: printable, one line. */
const labelSchema = z
  .string()
  .max(64)
  .regex(/^[^\p{Cc}]*$/u, 'must be one line of printable text');

export const mixerInputSchema = z.strictObject({
  uri: mixerUriSchema,
  remoteStreamName: streamNameSchema,
  /** Where it goes among the inputs, 0 first; after the others by default. */
  slot: z
    .number()
    .int()
    .min(0)
    .max(MAX_MIXER_INPUTS - 1)
    .optional(),
  hasVideo: z.boolean().optional(),
  hasAudio: z.boolean().optional(),
  label: labelSchema.optional(),
  /** true: a stream that does not publish yet is added all the same, a placeholder until it does. */
  waitForStream: z.boolean().optional(),
});

export const mixerLabelSchema = z.strictObject({ uri: mixerUriSchema, remoteStreamName: streamNameSchema, label: labelSchema });

export const mixerRemoveSchema = z.strictObject({ uri: mixerUriSchema, remoteStreamName: streamNameSchema });

export const mixerLayoutSchema = z.strictObject({ uri: mixerUriSchema, layout: layoutSchema, pip: pipSchema.optional() });

export const mixerAudioVideoSchema = z.strictObject({
  uri: mixerUriSchema,
  remoteStreamName: streamNameSchema,
  audioMuted: z.boolean().optional(),
  volume: z.number().min(0).max(4).optional().describe('the input gain in the mix: 1 as it is, 0 silent, up to 4'),
});

export const mixerTerminateSchema = z.strictObject({ uri: mixerUriSchema });

export type MixerStartup = z.output<typeof mixerStartupSchema>;
export type MixerInputRequest = z.output<typeof mixerInputSchema>;
export type MixerAudioVideo = z.output<typeof mixerAudioVideoSchema>;
export type MixerLayoutRequest = z.output<typeof mixerLayoutSchema>;
export type MixerLabelRequest = z.output<typeof mixerLabelSchema>;

export const mixerInfoSchema = z.object({
  uri: z.string(),
  localStreamName: z.string(),
  layout: layoutSchema,
  width: z.number(),
  height: z.number(),
  fps: z.number(),
  background: z.string(),
  hasAudio: z.boolean(),
  createdAt: z.string(),
  /** Pictures the mixer has made. */
  frames: z.number(),
  inputs: z.array(
    z.object({
      streamName: z.string(),
      slot: z.number(),
      /** Its stream publishes now (otherwise its slot shows a placeholder). */
      publishing: z.boolean(),
      audioMuted: z.boolean(),
      volume: z.number(),
      label: z.string(),
    }),
  ),
});
export type MixerInfo = z.output<typeof mixerInfoSchema>;
