import { z } from 'zod';
import { startupOptionsSchema } from './requests.js';
import { PUSH_STATES } from './states.js';
import { healthSchema } from './health.js';
import { FAILURE_CODES } from '../links/failures.js';
import { LAYER_NAMES } from '../publishers/layer-names.js';

/**
 * A push as the gateway tells of it: `find`, the SDK's destination messages, webhooks, the console
 * and the OpenAPI document all take it from this one schema. Web Call Server's fields first, then
 * the gateway's own. Holds no secret: the destination is shown redacted.
 */
export const pushInfoSchema = z.strictObject({
  mediaSessionId: z.string(),
  streamName: z.string().describe('The name at the RTMP server, secrets shown as ***'),
  sourceStreamName: z.string().describe('The published stream it republishes'),
  rtmpUrl: z.string().describe('The destination, secrets shown as ***'),
  width: z.number(),
  height: z.number(),
  resolutionChanges: z.number().describe('Times the picture size sent changed mid-stream (platforms dislike it)'),
  muted: z.boolean(),
  soundEnabled: z.boolean(),
  options: startupOptionsSchema.optional().describe("The startup request's options"),
  state: z.enum(PUSH_STATES),
  lastError: z.string().optional().describe('Why it is reconnecting, in standby or failed; never holds a secret'),
  errorCode: z.enum(FAILURE_CODES).optional().describe('Whose fault the failure was'),
  standbyUntil: z.string().optional().describe('In standby: when its grace period ends'),
  reconnectAttempt: z.number().describe('Attempts of the current outage'),
  health: healthSchema
    .optional()
    .describe(
      "While it is up, once 5 s were sent: what the platform's dashboard checks, measured on what was sent over the last 20 s",
    ),
  outputBuffer: z
    .strictObject({ state: z.string().optional(), levelMs: z.number(), bufferings: z.number() })
    .optional(),
  transcoding: z.boolean(),
  videoCodec: z
    .enum(['H264', 'AV1'])
    .optional()
    .describe("The video it sends: the stream's own, passed through (AV1 over Enhanced RTMP), or H.264 transcoded"),
  captions: z
    .union([z.enum(['roll-up', 'pop-on']), z.literal(false)])
    .describe("How it shows the stream's captions (CEA-608), or false: it carries none"),
  platform: z
    .string()
    .optional()
    .describe(
      "The destination's platform (named, or recognised from its host), whose limits the push was checked against",
    ),
  backupMediaSessionId: z
    .string()
    .optional()
    .describe('Of a push with `backupUrl`: its twin to the backup ingest, a push of its own in `find`'),
  backupError: z.string().optional().describe('Of a push with `backupUrl`: why its backup could not be started'),
  backupOf: z.string().optional().describe('Of a backup: the push it is the twin of (terminating that one ends both)'),
  aspect: z.string().optional().describe('The shape asked for (9:16), when the push makes a picture of its own shape'),
  layer: z.enum(LAYER_NAMES).optional().describe('Of a simulcast stream: the layer it sends now'),
  createdAt: z.string(),
  counters: z.strictObject({
    packetsSent: z.number(),
    bytesSent: z.number(),
    frames: z.number(),
    drops: z.number().describe('Outages'),
    reconnects: z.number().describe('Outages restored'),
    sheds: z
      .number()
      .describe("Times it was shed to leave a saturated machine's CPU to the others (`lastError` says why)"),
    framesLost: z.number().describe('Frames the publisher lost while it fed this push'),
    framesDropped: z.number().describe('Frames dropped for a destination too far behind'),
    framesDiscarded: z
      .number()
      .describe("Frames the push's own queue discarded: its work on the gateway did not keep up with the stream"),
    audioPacketsDiscarded: z.number().describe("Audio packets the push's own queue discarded, with those frames"),
    audioDiscardedMs: z
      .number()
      .describe('Audio (ms) its encoder left out to catch up, the machine out of CPU (since the encoder last started)'),
    lagMs: z.number(),
    acknowledgedAgoMs: z.number().optional().describe('Since the destination last acknowledged what it received'),
    outputBytes: z.number(),
    acknowledgedBytes: z.number(),
    captionsSent: z
      .number()
      .optional()
      .describe('Captions that went into its video, interim ones included (once it had one)'),
    captionCharactersReplaced: z
      .number()
      .optional()
      .describe("Characters of its captions sent as others: 608 has no code for them (an accent dropped, or '?')"),
    captionsDropped: z
      .number()
      .optional()
      .describe('Times captions waiting were dropped: more than 20 s of them while it sent no frames'),
  }),
});
export type PushInfo = z.infer<typeof pushInfoSchema>;

/**
 * What the machine's shedder weighs of a push (`Push.sheddable`): whether shedding would take it
 * (running), since when its encoder is behind, and what shedding it frees (`cost`: 2 an encoder
 * of its own that transcodes, 1 its own ffmpeg making AAC, 0 an encoder it shares with other pushes,
 * which keep it running).
 */
export const sheddableSchema = z.strictObject({
  mediaSessionId: z.string(),
  createdAt: z.string(),
  createdMonoMs: z.number(),
  running: z.boolean(),
  shed: z.boolean(),
  behindSince: z.number().nullable(),
  cost: z.number().int().min(0).max(2),
  /** CPU time its own ffmpeg has used so far (s); 0 with none of its own. */
  cpuSeconds: z.number().nonnegative(),
});
export type Sheddable = z.infer<typeof sheddableSchema>;
