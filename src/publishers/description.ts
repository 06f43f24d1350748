import { z } from 'zod';
import { monotonicMs } from '../core/clock.js';
import type { Publisher } from './publisher.js';

/** A stream as `/rest-api/stream/find` shows it: plain data, the same from any worker; the OpenAPI document shows this schema. */
export const streamJsonSchema = z.object({
  name: z.string(),
  /** The publish's id (the WHIP session id). */
  id: z.string(),
  state: z.enum(['connecting', 'publishing', 'closed']),
  video: z
    .object({
      codec: z.string(),
      width: z.number().optional(),
      height: z.number().optional(),
      frameRate: z.number().optional(),
    })
    .nullable(),
  audio: z.object({ codec: z.literal('opus') }).nullable(),
  /** Received RTP over the last second. */
  bitrateKbps: z.number(),
  packets: z.number(),
  /** RTP packets never received (a retransmission that came in time counts as received). */
  packetsLost: z.number(),
  /** Video frames dropped because a packet of theirs was lost (after retransmission had its chance). */
  framesLost: z.number(),
  /** Video frames made whole from the RTP (once for every push of the stream). */
  frames: z.number(),
  keyframes: z.number(),
  /** Keyframes asked of the sender (RTCP PLI): on the keyframe interval, after a loss, for a new push. */
  keyframeRequests: z.number(),
  /** Retransmissions asked of the sender (RTCP NACK) for lost packets. */
  nacksSent: z.number(),
  /**
   * The stream's RTP hop by hop (both tracks; the engine's counts are read every few seconds): the
   * media engine received from the publisher and lost on the way to it, sent on towards the
   * gateway's frame path, which received `gatewayReceived` (duplicates included). Null on an
   * engine that does not count (werift).
   */
  hops: z
    .object({ engineReceived: z.number(), engineLost: z.number(), engineSent: z.number(), gatewayReceived: z.number() })
    .nullable(),
  createdAt: z.string(),
  publishingSince: z.string().nullable(),
  /** Its media time now (ms since it began publishing): the clock a caption's `at` is on. */
  mediaTimeMs: z.number().optional(),
  /** Messages of its data channels (captions) refused: malformed, or past 20 a second. */
  messagesRefused: z.number().optional(),
  clientAddress: z.string().nullable(),
  /** What keeps it from connecting, when the gateway can tell: no ICE check came, with the likely cause. */
  warning: z.string().nullable(),
  /** The mediaSessionIds of its pushes (the REST API's name, which nodes of every release read). */
  transponders: z.array(z.string()),
});
export type StreamJson = z.infer<typeof streamJsonSchema>;

export function describeStream(p: Publisher, pushes: string[]): StreamJson {
  const size = p.keyframe?.size;
  const frameRate = p.frameRate;
  return {
    name: p.name,
    id: p.id,
    state: p.state,
    video: p.videoCodec
      ? { codec: p.videoCodec, ...size, ...(frameRate ? { frameRate: Math.round(frameRate * 100) / 100 } : {}) }
      : null,
    audio: p.hasAudio ? { codec: 'opus' } : null,
    bitrateKbps: p.bitrateKbps,
    packets: p.counters.packets,
    packetsLost: p.packetsLost,
    framesLost: p.framesLost,
    frames: p.counters.frames,
    keyframes: p.counters.keyframes,
    keyframeRequests: p.counters.keyframeRequests,
    nacksSent: p.nacksSent,
    hops: p.hops ?? null,
    createdAt: new Date(p.createdAt).toISOString(),
    publishingSince: p.publishingSince ? new Date(p.publishingSince).toISOString() : null,
    ...(p.mediaOriginMs !== undefined ? { mediaTimeMs: Math.round(monotonicMs() - p.mediaOriginMs) } : {}),
    messagesRefused: p.messagesRefused,
    clientAddress: p.clientAddress ?? null,
    warning: p.warning ?? null,
    transponders: pushes,
  };
}
