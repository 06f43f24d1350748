import type { Publisher } from './publisher.js';
import { pictureSize } from './stats.js';

/** A stream as `/rest-api/stream/find` shows it: plain data, the same from any worker. */
export interface StreamJson {
  name: string;
  /** The publish's id (the WHIP session id). */
  id: string;
  state: Publisher['state'];
  video: { codec: string; width?: number; height?: number; frameRate?: number } | null;
  audio: { codec: 'opus' } | null;
  /** Received RTP over the last second. */
  bitrateKbps: number;
  packets: number;
  /** RTP packets never received (a retransmission that came in time counts as received). */
  packetsLost: number;
  /** Video frames dropped because a packet of theirs was lost (after retransmission had its chance). */
  framesLost: number;
  keyframes: number;
  /** Keyframes asked of the sender (RTCP PLI): on the keyframe interval, after a loss, for a new push. */
  keyframeRequests: number;
  /** Retransmissions asked of the sender (RTCP NACK) for lost packets. */
  nacksSent: number;
  createdAt: string;
  publishingSince: string | null;
  clientAddress: string | null;
  /** The mediaSessionIds of its transponders. */
  transponders: string[];
}

export function describeStream(p: Publisher, transponders: string[]): StreamJson {
  const size = pictureSize(p.keyframe);
  const frameRate = p.frameRate;
  return {
    name: p.name,
    id: p.id,
    state: p.state,
    video: p.videoCodec ? { codec: p.videoCodec, ...size, ...(frameRate ? { frameRate: Math.round(frameRate * 100) / 100 } : {}) } : null,
    audio: p.hasAudio ? { codec: 'opus' } : null,
    bitrateKbps: p.bitrateKbps,
    packets: p.counters.packets,
    packetsLost: p.packetsLost,
    framesLost: p.framesLost,
    keyframes: p.counters.keyframes,
    keyframeRequests: p.counters.keyframeRequests,
    nacksSent: p.nacksSent,
    createdAt: new Date(p.createdAt).toISOString(),
    publishingSince: p.publishingSince ? new Date(p.publishingSince).toISOString() : null,
    clientAddress: p.clientAddress ?? null,
    transponders,
  };
}
