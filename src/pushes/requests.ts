import { z } from 'zod';
import { platformSchema, REQUESTED_CODECS } from '../links/platforms.js';
import { overlaysSchema } from '../pipeline/overlays.js';
import { aspectSchema, checkShapeFields, cropSchema, fitSchema } from '../pipeline/shape.js';
import { streamNameSchema } from '../publishers/stream-name.js';
import { LAYER_NAMES } from '../publishers/layer-names.js';
import { wcsBoolean, wcsNumber } from '../core/validation.js';

/**
 * What the push API takes (Web Call Server's `/rest-api/push/*` bodies): the schemas check
 * every field and the rules between fields, and the service's input types are what they produce.
 * Booleans and numbers are taken as JSON's or as strings, the way Web Call Server's documents write them.
 */

const dimension = wcsNumber(z.number().int().min(0).max(4096));

/** `options` at startup: the audio actions of Web Call Server. */
export const startupOptionsSchema = z
  .strictObject({
    action: z.enum(['mute', 'sound_on']).optional(),
    soundFile: z.string().min(1).max(255).optional(),
    loop: wcsBoolean().optional(),
    volume: wcsNumber(z.number().min(0).max(1)).optional(),
  })
  .superRefine((options, context) => {
    if (options.action === 'sound_on') {
      if (!options.soundFile)
        context.addIssue({ code: 'custom', path: ['soundFile'], message: 'is required with "action": "sound_on"' });
      return;
    }
    for (const key of ['soundFile', 'loop', 'volume'] as const) {
      if (key in options)
        context.addIssue({ code: 'custom', path: [key], message: 'is used only with "action": "sound_on"' });
    }
  });

/** What a push makes of the picture and the sound: Web Call Server's fields, then the gateway's own. */
export const renditionFields = {
  width: dimension.optional(),
  height: dimension.optional(),
  fps: wcsNumber(z.number().int().min(0).max(120)).optional(),
  keyFrameInterval: wcsNumber(z.number().int().min(0).max(1200)).optional(),
  videoBitrate: wcsNumber(z.number().int().min(0).max(50000)).optional(),
  audioBitrate: wcsNumber(z.number().int().min(0).max(320)).optional(),
  aspect: aspectSchema.optional(),
  crop: cropSchema.optional(),
  fit: fitSchema.optional(),
  layer: z
    .union([z.enum(LAYER_NAMES), wcsNumber(z.number().int().min(90).max(4096))])
    .optional()
    .describe('a simulcast layer of the stream ("low", "medium", "high"), or the tallest up to this height'),
  layerPolicy: z
    .enum(['switch', 'pin'])
    .optional()
    .describe(
      'when the browser stops sending the layer: switch down and back (standby when none is below), or pin it (standby meanwhile)',
    ),
  videoCodec: z
    .enum(REQUESTED_CODECS)
    .optional()
    .describe(
      'the video sent: "passthrough" (the stream\'s H.264 or AV1 as it is), "h264" (transcoded unless it is), ' +
        '"av1" (an AV1 stream passed through); when absent, passed through where the destination takes the codec',
    ),
};

export const startupSchema = z
  .strictObject({
    streamName: streamNameSchema,
    rtmpUrl: z
      .string()
      .min(1)
      .max(2048)
      .describe('rtmp://, rtmps:// or srt:// destination, or record:// to record in record_dir'),
    rtmpTransponderFullUrl: wcsBoolean().optional(),
    backupUrl: z
      .string()
      .min(1)
      .max(2048)
      .optional()
      .describe(
        "a second ingest of the destination (YouTube's backup, rtmp://b.rtmp.youtube.com/live2?backup=1/KEY): " +
          'a twin push sends it the same frames at the same times; named as rtmpUrl is',
      ),
    platform: platformSchema.optional(),
    rtmpFlashVersion: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII')
      .optional(),
    ...renditionFields,
    /** Images laid over the picture (a logo, a frame): the push transcodes. */
    overlays: overlaysSchema.optional(),
    options: startupOptionsSchema.optional(),
    captions: z
      .union([z.enum(['roll-up', 'pop-on']), wcsBoolean()], { error: 'expected "roll-up", "pop-on", true or false' })
      .optional()
      .describe(
        'how the push shows the stream\'s captions (CEA-608): "roll-up" (true, the default) or "pop-on"; ' +
          'false: none (a recording then writes no WebVTT)',
      ),
  })
  .superRefine(checkShapeFields);

export const mediaSessionIdSchema = z.string().min(1).max(64);

export const soundOnSchema = z.strictObject({
  mediaSessionId: mediaSessionIdSchema,
  soundFile: z.string().min(1).max(255),
  loop: wcsBoolean().optional(),
  volume: wcsNumber(z.number().min(0).max(1)).optional(),
});

export type StartupRequest = z.infer<typeof startupSchema>;
/** A sound file to play: `sound_on` without its session id. */
export const soundRequestSchema = soundOnSchema.omit({ mediaSessionId: true });
export type SoundRequest = z.infer<typeof soundRequestSchema>;

/** `find`: pushes of a stream, or to a destination (as requested), or both. */
export const findFilterSchema = z.strictObject({
  streamName: z.string().min(1).max(256).optional(),
  rtmpUrl: z.string().min(1).max(2048).optional(),
});
export type FindFilter = z.infer<typeof findFilterSchema>;
