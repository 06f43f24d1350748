import { z } from 'zod';
import { streamNameSchema } from '../publishers/stream-name.js';
import type { ClientMessage } from '../signaling/protocol.js';
import { mediaSessionIdSchema } from '../transponders/requests.js';

/** The largest SDK signalling message (an offer is 5-10 KB). */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;

export const findSchema = z.strictObject({
  streamName: z.string().min(1).max(256).optional(),
  rtmpUrl: z.string().min(1).max(2048).optional(),
});

export const findAllSchema = z.strictObject({});

export const mediaSessionSchema = z.strictObject({ mediaSessionId: mediaSessionIdSchema });

/** A stream by its name, as Web Call Server's `/rest-api/stream/*` take it. */
export const streamSchema = z.strictObject({ name: streamNameSchema });

/** Browser SDK signalling, client to gateway: checks what `ClientMessage` (the protocol) describes. */
export const clientMessageSchema: z.ZodType<ClientMessage> = z.discriminatedUnion('type', [
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
