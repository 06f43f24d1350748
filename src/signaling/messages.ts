import { z } from 'zod';
import { streamNameSchema } from '../publishers/stream-name.js';
import { MAX_DESTINATIONS, type ClientMessage } from './protocol.js';

/** The largest SDK signalling message (an offer is 5-10 KB). */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;

/** Browser SDK signalling, client to gateway: checks what `ClientMessage` (the protocol) describes. */
const requestIdSchema = z.string().min(1).max(64);
const destinationIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - (1 to 64)');
const destinationRequestSchema = z.strictObject({
  id: destinationIdSchema,
  rtmpUrl: z.string().min(1).max(2048),
  rtmpTransponderFullUrl: z.boolean().optional(),
});

export const clientMessageSchema: z.ZodType<ClientMessage> = z.discriminatedUnion('type', [
  z
    .strictObject({
      type: z.literal('publish'),
      requestId: requestIdSchema,
      name: streamNameSchema,
      sdp: z.string().min(1).max(MAX_SIGNALING_MESSAGE_BYTES),
      rtmpUrl: z.string().min(1).max(2048).optional(),
      rtmpTransponderFullUrl: z.boolean().optional(),
      destinations: z.array(destinationRequestSchema).max(MAX_DESTINATIONS).optional(),
      /** A publish token (publish key or JWT) from the integrator's backend, when publishing needs one. */
      token: z.string().min(1).max(4096).optional(),
    })
    .superRefine((m, ctx) => {
      if (m.rtmpUrl !== undefined && m.destinations !== undefined) ctx.addIssue({ code: 'custom', path: ['destinations'], message: 'give rtmpUrl or destinations, not both' });
      const ids = (m.destinations ?? []).map((d) => d.id);
      const twice = ids.findIndex((id, i) => ids.indexOf(id) !== i);
      if (twice >= 0) ctx.addIssue({ code: 'custom', path: ['destinations', twice, 'id'], message: `${ids[twice]} is given twice` });
    }),
  z.strictObject({
    type: z.literal('unpublish'),
    name: streamNameSchema,
  }),
  z.strictObject({
    type: z.literal('addDestination'),
    requestId: requestIdSchema,
    name: streamNameSchema,
    destination: destinationRequestSchema,
  }),
  z.strictObject({
    type: z.literal('removeDestination'),
    name: streamNameSchema,
    id: destinationIdSchema,
  }),
]);
