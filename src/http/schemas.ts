import { z } from 'zod';

const dimension = z.number().int().min(0).max(4096);

/** `options` at startup: the audio actions of Web Call Server. */
export const startupOptionsSchema = z.strictObject({
  action: z.enum(['mute', 'sound_on']).optional(),
  soundFile: z.string().min(1).max(255).optional(),
  loop: z.boolean().optional(),
  volume: z.number().min(0).max(1).optional(),
});

export const startupSchema = z.strictObject({
  streamName: z.string().min(1).max(128),
  rtmpUrl: z.string().min(1),
  rtmpTransponderFullUrl: z.boolean().optional(),
  rtmpFlashVersion: z.string().min(1).max(128).regex(/^[\x20-\x7e]+$/, 'must be printable ASCII').optional(),
  width: dimension.optional(),
  height: dimension.optional(),
  fps: z.number().int().min(0).max(120).optional(),
  keyFrameInterval: z.number().int().min(0).max(1200).optional(),
  videoBitrate: z.number().int().min(0).max(50000).optional(),
  audioBitrate: z.number().int().min(0).max(320).optional(),
  options: startupOptionsSchema.optional(),
});

export const findSchema = z.strictObject({
  streamName: z.string().min(1).optional(),
  rtmpUrl: z.string().min(1).optional(),
});

export const findAllSchema = z.strictObject({});

const mediaSessionId = z.string().min(1).max(64);

export const mediaSessionSchema = z.strictObject({ mediaSessionId });

export const soundOnSchema = z.strictObject({
  mediaSessionId,
  soundFile: z.string().min(1).max(255),
  loop: z.boolean().optional(),
  volume: z.number().min(0).max(1).optional(),
});

/** Browser SDK signalling, client to gateway. */
export const clientMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('publish'),
    requestId: z.string().min(1).max(64),
    name: z.string().min(1).max(128),
    sdp: z.string().min(1).max(100_000),
    rtmpUrl: z.string().min(1).optional(),
    rtmpTransponderFullUrl: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('unpublish'),
    name: z.string().min(1).max(128),
  }),
]);

export type ClientMessage = z.infer<typeof clientMessageSchema>;
