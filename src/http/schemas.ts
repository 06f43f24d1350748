import { z } from 'zod';
import { streamNameSchema } from '../publishers/stream-name.js';

/** The largest SDK signalling message (an offer is 5-10 KB). */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;

const dimension = z.number().int().min(0).max(4096);

/** `options` at startup: the audio actions of Web Call Server. */
export const startupOptionsSchema = z.strictObject({
  action: z.enum(['mute', 'sound_on']).optional(),
  soundFile: z.string().min(1).max(255).optional(),
  loop: z.boolean().optional(),
  volume: z.number().min(0).max(1).optional(),
});

export const startupSchema = z.strictObject({
  streamName: streamNameSchema,
  rtmpUrl: z.string().min(1).max(2048),
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
  streamName: z.string().min(1).max(256).optional(),
  rtmpUrl: z.string().min(1).max(2048).optional(),
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
    name: streamNameSchema,
    sdp: z.string().min(1).max(MAX_SIGNALING_MESSAGE_BYTES),
    rtmpUrl: z.string().min(1).max(2048).optional(),
    rtmpTransponderFullUrl: z.boolean().optional(),
    /** A publish token (publish key or JWT) from the integrator's backend, when publishing needs one. */
    token: z.string().min(1).max(4096).optional(),
  }),
  z.strictObject({
    type: z.literal('unpublish'),
    name: streamNameSchema,
  }),
]);

export type ClientMessage = z.infer<typeof clientMessageSchema>;
