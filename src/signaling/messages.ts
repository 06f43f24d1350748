import { z } from 'zod';
import { captionAtSchema, captionTextSchema } from '../captions/request.js';
import { mixerInputFields, mixerStartupSchema, mixerUriSchema } from '../mixers/requests.js';
import { platformSchema } from '../links/platforms.js';
import { checkShapeFields } from '../pipeline/shape.js';
import { renditionFields } from '../pushes/requests.js';
import { streamNameSchema } from '../publishers/stream-name.js';

/**
 * What the SDK sends, defined once: these schemas check every message a client sends, and
 * `protocol.ts` gives their inferred types to the SDK (which imports the types only).
 */

/** Most destinations one published stream may have from the SDK. */
export const MAX_DESTINATIONS = 8;

/** The largest SDK signalling message (an offer is 5-10 KB). */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;

const requestIdSchema = z.string().min(1).max(64);
const destinationIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - (1 to 64)');

/**
 * Where to republish a stream: one push, named by an id the client chooses, with what a REST
 * startup may ask of its picture and sound (its size, shape, frame rate, bitrates).
 */
export const destinationRequestSchema = z
  .strictObject({
    /** Names the destination in every `destination` message (the URL holds a stream key: it is never sent back). */
    id: destinationIdSchema,
    rtmpUrl: z.string().min(1).max(2048),
    rtmpTransponderFullUrl: z.boolean().optional(),
    platform: platformSchema.optional(),
    ...renditionFields,
  })
  .superRefine(checkShapeFields);

/**
 * Publish a stream: an SDP offer, and optionally where to republish it once publishing. A publish
 * of a name this session already publishes replaces that publish, as a publisher that came back:
 * its pushes go on with the new one (the SDK's recovery after its peer connection failed).
 */
export const publishMessageSchema = z
  .strictObject({
    type: z.literal('publish'),
    /** Chosen by the client; the answer and any error name it. */
    requestId: requestIdSchema,
    name: streamNameSchema,
    sdp: z.string().min(1).max(MAX_SIGNALING_MESSAGE_BYTES),
    /** One destination, with id `rtmpUrl` (the form of the first protocol version). */
    rtmpUrl: z.string().min(1).max(2048).optional(),
    rtmpTransponderFullUrl: z.boolean().optional(),
    destinations: z.array(destinationRequestSchema).max(MAX_DESTINATIONS).optional(),
    /** A publish token (publish key or JWT) from the integrator's backend, when publishing needs one. */
    token: z.string().min(1).max(4096).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.rtmpUrl !== undefined && m.destinations !== undefined)
      ctx.addIssue({ code: 'custom', path: ['destinations'], message: 'give rtmpUrl or destinations, not both' });
    const ids = (m.destinations ?? []).map((d) => d.id);
    const twice = ids.findIndex((id, i) => ids.indexOf(id) !== i);
    if (twice >= 0)
      ctx.addIssue({ code: 'custom', path: ['destinations', twice, 'id'], message: `${ids[twice]} is given twice` });
  });

const unpublishMessageSchema = z.strictObject({
  type: z.literal('unpublish'),
  name: streamNameSchema,
});

/** Adds a destination to a stream of this session, pushed at once when it is publishing. */
export const addDestinationMessageSchema = z.strictObject({
  type: z.literal('addDestination'),
  requestId: requestIdSchema,
  name: streamNameSchema,
  destination: destinationRequestSchema,
});

/** Ends the push to one destination of a stream; the stream and its other pushes go on. */
const removeDestinationMessageSchema = z.strictObject({
  type: z.literal('removeDestination'),
  name: streamNameSchema,
  id: destinationIdSchema,
});

/**
 * Checks a destination before going live (`/rest-api/push/check`): for the stream `name` would
 * publish, with the publish token's rules; answered with `destinationChecked`.
 */
export const checkDestinationMessageSchema = z.strictObject({
  type: z.literal('checkDestination'),
  requestId: requestIdSchema,
  name: streamNameSchema,
  rtmpUrl: z.string().min(1).max(2048),
  rtmpTransponderFullUrl: z.boolean().optional(),
  /** Also publish then unpublish at once: whether the key is accepted. */
  publish: z.boolean().optional(),
  token: z.string().min(1).max(4096).optional(),
});

/**
 * Starts a mixer (the fields of `/rest-api/mixer/startup`) that ends with this session. The token
 * (or that of a stream this session publishes) must allow the mixer: its `mixers` grant.
 */
export const startMixerMessageSchema = z.strictObject({
  type: z.literal('startMixer'),
  requestId: requestIdSchema,
  mixer: mixerStartupSchema,
  token: z.string().min(1).max(4096).optional(),
});

/** Adds a stream this session publishes to a mixer, which its publish token must allow (its `mixers` grant). */
export const joinMixerMessageSchema = mixerInputFields.pick({ uri: true, slot: true, label: true }).extend({
  type: z.literal('joinMixer'),
  requestId: requestIdSchema,
  name: streamNameSchema,
});

/** Takes a stream this session publishes out of a mixer. */
const leaveMixerMessageSchema = z.strictObject({
  type: z.literal('leaveMixer'),
  requestId: requestIdSchema,
  name: streamNameSchema,
  uri: mixerUriSchema,
});

/** A caption for every push of a stream this session publishes (`/rest-api/stream/caption`); answered with `captioned`. */
const captionMessageSchema = z.strictObject({
  type: z.literal('caption'),
  requestId: requestIdSchema,
  name: streamNameSchema,
  text: captionTextSchema,
  final: z.boolean().optional(),
  at: captionAtSchema.optional(),
});

/** What the SDK sends. */
export const clientMessageSchema = z.discriminatedUnion('type', [
  captionMessageSchema,
  startMixerMessageSchema,
  joinMixerMessageSchema,
  leaveMixerMessageSchema,
  publishMessageSchema,
  unpublishMessageSchema,
  addDestinationMessageSchema,
  removeDestinationMessageSchema,
  checkDestinationMessageSchema,
]);
