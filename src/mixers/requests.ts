import { z } from 'zod';
import { overlaysSchema } from '../pipeline/overlays.js';
import { streamNameSchema } from '../publishers/stream-name.js';
import { wcsBoolean, wcsNumber } from '../core/validation.js';
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
  .regex(
    /^mixer:\/\/[A-Za-z0-9._-]{1,64}$/,
    'must be mixer://name, the name of letters, digits, dot, dash and underscore (at most 64)',
  );

/** A mixer's name: its URI without `mixer://`, and the default name of its stream. */
export const mixerName = (uri: string): string => uri.slice('mixer://'.length);
/** The stream a mixer publishes: `localStreamName`, else its name. */
export const mixerStream = (request: { uri: string; localStreamName?: string }): string =>
  request.localStreamName ?? mixerName(request.uri);

const layoutSchema = z.enum(LAYOUTS);

const pipSchema = z.strictObject({
  corner: z.enum(PIP_CORNERS).default('bottom-right'),
  size: wcsNumber(z.number().min(0.1).max(0.5))
    .default(0.25)
    .describe('the insets width, as a fraction of the output width'),
});

const even = (min: number, max: number) => wcsNumber(z.number().int().min(min).max(max).multipleOf(2, 'must be even'));

/**
 * The layout a Web Call Server `mixerLayoutClass` names, by its class's own name: a grid, the
 * screen-sharing layout ("desktop": the first input large, the others in a strip), the speaker's,
 * picture-in-picture; undefined for a class it cannot tell (the mixer is then
 * made with the layout given, or the grid, and the gateway logs it).
 */
export function layoutOfClass(className: string): (typeof LAYOUTS)[number] | undefined {
  const name = className.slice(className.lastIndexOf('.') + 1);
  if (/picture.?in.?picture|pip/i.test(name)) return 'picture-in-picture';
  if (/grid/i.test(name)) return 'grid';
  if (/desktop|screen|presentation|center/i.test(name)) return 'desktop';
  if (/speaker/i.test(name)) return 'speaker';
  return undefined;
}

/** Web Call Server's names for the output's size, rate and bitrate (`mixerVideoWidth`…), beside this gateway's. */
const WCS_SIZES = {
  mixerVideoWidth: 'width',
  mixerVideoHeight: 'height',
  mixerVideoFps: 'fps',
  mixerVideoBitrateKbps: 'videoBitrate',
} as const;

export const mixerStartupSchema = z
  .strictObject({
    uri: mixerUriSchema,
    /** The stream the mixer publishes; the mixer's name by default. */
    localStreamName: streamNameSchema.optional(),
    /** false: a mixer of its inputs' sound alone (an audio room, a radio show); its picture's fields are then not used. */
    hasVideo: wcsBoolean().default(true),
    hasAudio: wcsBoolean().default(true),
    layout: layoutSchema.optional().describe('grid by default'),
    mixerLayoutClass: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe("Web Call Server's layout class, mapped to a layout by its name (grid, desktop, picture-in-picture)"),
    pip: pipSchema.optional(),
    width: even(160, 1920).optional().describe('1280 by default (or mixerVideoWidth)'),
    height: even(120, 1080).optional().describe('720 by default (or mixerVideoHeight)'),
    fps: wcsNumber(z.number().int().min(1).max(60)).optional().describe('30 by default (or mixerVideoFps)'),
    videoBitrate: wcsNumber(z.number().int().min(100).max(20000))
      .optional()
      .describe('kb/s, 2500 by default (or mixerVideoBitrateKbps)'),
    mixerVideoWidth: even(160, 1920).optional(),
    mixerVideoHeight: even(120, 1080).optional(),
    mixerVideoFps: wcsNumber(z.number().int().min(1).max(60)).optional(),
    mixerVideoBitrateKbps: wcsNumber(z.number().int().min(100).max(20000)).optional(),
    audioBitrate: wcsNumber(z.number().int().min(16).max(256)).default(96).describe('kb/s (Opus)'),
    background: z
      .string()
      .min(1)
      .max(255)
      .default('#000000')
      .describe('a #rrggbb colour, or an image file (PNG or JPEG) of media_dir, scaled to fill the picture'),
    watermark: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe("an image file of media_dir at the picture's top right (Web Call Server's watermark)"),
    overlays: overlaysSchema.optional(),
  })
  .superRefine((request, context) => {
    if (!request.hasVideo && !request.hasAudio)
      context.addIssue({
        code: 'custom',
        path: ['hasAudio'],
        message: 'a mixer makes a picture or sound: hasVideo and hasAudio are both false',
      });
    for (const [theirs, ours] of Object.entries(WCS_SIZES)) {
      if (request[theirs as keyof typeof WCS_SIZES] !== undefined && request[ours] !== undefined) {
        context.addIssue({ code: 'custom', path: [theirs], message: `give ${ours} or ${theirs}, not both` });
      }
    }
  })
  .transform(
    ({ mixerLayoutClass, mixerVideoWidth, mixerVideoHeight, mixerVideoFps, mixerVideoBitrateKbps, ...request }) => ({
      ...request,
      layout: request.layout ?? (mixerLayoutClass ? layoutOfClass(mixerLayoutClass) : undefined) ?? 'grid',
      width: request.width ?? mixerVideoWidth ?? 1280,
      height: request.height ?? mixerVideoHeight ?? 720,
      fps: request.fps ?? mixerVideoFps ?? 30,
      videoBitrate: request.videoBitrate ?? mixerVideoBitrateKbps ?? 2500,
    }),
  );

/** Text written over an input's picture: printable, one line. */
const labelSchema = z
  .string()
  .max(64)
  .regex(/^[^\p{Cc}]*$/u, 'must be one line of printable text');

/** The fields of `/rest-api/mixer/add`: the SDK's `joinMixer` takes some of them. */
export const mixerInputFields = z.strictObject({
  uri: mixerUriSchema,
  remoteStreamName: streamNameSchema,
  /** Where it goes among the inputs, 0 first; after the others by default. */
  slot: wcsNumber(
    z
      .number()
      .int()
      .min(0)
      .max(MAX_MIXER_INPUTS - 1),
  ).optional(),
  hasVideo: wcsBoolean().optional(),
  hasAudio: wcsBoolean().optional(),
  label: labelSchema.optional(),
  /** Web Call Server's name for `label`. */
  streamLabel: labelSchema.optional(),
  /** Web Call Server's, taken and not used (the gateway logs it): an audio input's picture, a place in its layouts. */
  avatar: z.string().max(2048).optional(),
  videoPositionId: z.string().max(64).optional(),
  /** true: a stream that does not publish yet is added all the same, a placeholder until it does. */
  waitForStream: wcsBoolean().optional(),
});

export const mixerInputSchema = mixerInputFields
  .refine((request) => request.label === undefined || request.streamLabel === undefined, {
    path: ['streamLabel'],
    message: 'give label or streamLabel, not both',
  })
  .transform(({ streamLabel, avatar: _avatar, videoPositionId: _position, ...request }) =>
    streamLabel === undefined ? request : { ...request, label: streamLabel },
  );

/** The fields of a mixer request that Web Call Server has and this gateway takes without using: logged as such. */
export const IGNORED_WCS_FIELDS = ['avatar', 'videoPositionId'] as const;

export const mixerLabelSchema = z.strictObject({
  uri: mixerUriSchema,
  remoteStreamName: streamNameSchema,
  label: labelSchema,
});

export const mixerRemoveSchema = z.strictObject({ uri: mixerUriSchema, remoteStreamName: streamNameSchema });

export const mixerLayoutSchema = z.strictObject({
  uri: mixerUriSchema,
  layout: layoutSchema,
  pip: pipSchema.optional(),
});

export const mixerAudioVideoSchema = z.strictObject({
  uri: mixerUriSchema,
  remoteStreamName: streamNameSchema,
  audioMuted: wcsBoolean().optional(),
  volume: wcsNumber(z.number().min(0).max(4))
    .optional()
    .describe('the input gain in the mix: 1 as it is, 0 silent, up to 4'),
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
  /** Listed by nodes of a release before 2026-11-27 without it: they made video always. */
  hasVideo: z.boolean().default(true),
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

/**
 * A mixer as `find_all` lists it: its own fields, and Web Call Server's, which its clients read to
 * find a mixer's stream and inputs: the media session of its stream (`localMediaSessionId`), those
 * of its inputs that publish (`mediaSessions`), and its status.
 */
export const mixerListingSchema = mixerInfoSchema.extend({
  localMediaSessionId: z.string().nullable(),
  remoteMediaSessionId: z.null(),
  remoteStreamName: z.null(),
  status: z.literal('PROCESSED_LOCAL'),
  mediaSessions: z.array(z.string()),
});
export type MixerListing = z.output<typeof mixerListingSchema>;

/** `mixer` as `find_all` lists it; `sessionOf` gives a stream's media session (its publish's id), when it publishes. */
export function mixerListing(mixer: MixerInfo, sessionOf: (stream: string) => string | undefined): MixerListing {
  const inputs = mixer.inputs.filter((input) => input.publishing).map((input) => sessionOf(input.streamName));
  return {
    ...mixer,
    localMediaSessionId: sessionOf(mixer.localStreamName) ?? null,
    remoteMediaSessionId: null,
    remoteStreamName: null,
    status: 'PROCESSED_LOCAL',
    mediaSessions: inputs.filter((id): id is string => id !== undefined),
  };
}
