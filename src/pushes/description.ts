import { monotonicMs } from '../core/clock.js';
import type { Publisher } from '../publishers/publisher.js';
import type { Destination } from '../links/destination.js';
import type { EncodingPlan } from '../pipeline/encoding.js';
import type { PublisherInput } from './input.js';
import type { AudioCommands } from '../pipeline/audio-commands.js';
import type { TagWriter } from './tag-writer.js';
import type { PushInfo } from './info.js';
import type { Health } from './health.js';
import type { PushConfig, PushOptions } from './settings.js';
import type { Standby } from './standby.js';
import { isUp, type PushState } from './states.js';
import type { LinkSlotStats } from './link-slot.js';
import type { FailureCode } from '../links/failures.js';
import { layerSent } from './layers.js';

/** What `find` shows of a push. */
/** A push's twin: the same frames, at the same times, to a second ingest of the destination. */
export interface Twin {
  /** What this push is of the two. */
  role: 'primary' | 'backup';
  /** The other's id; undefined for a backup that could not be started (`error` says why). */
  mediaSessionId?: string;
  error?: string;
}

export interface PushView {
  readonly mediaSessionId: string;
  readonly createdAt: number;
  readonly destination: Destination;
  readonly publisher: Publisher;
  readonly request: PushOptions;
  readonly config: PushConfig;
  readonly plan: EncodingPlan;
  readonly state: PushState;
  readonly lastError: string | undefined;
  readonly errorCode: FailureCode | undefined;
  readonly reconnectAttempt: number;
  readonly counters: { drops: number; reconnects: number; sheds: number };
  readonly audioDiscardedMs: number;
  readonly output: LinkSlotStats;
  readonly writer: TagWriter;
  readonly health: { readonly current: Health | undefined };
  readonly standby: Standby;
  readonly audio: AudioCommands;
  readonly input: PublisherInput;
  readonly twin: Twin | undefined;
}

/** How `find` tells a twin push: the backup's id on its primary (or why there is none), the primary's on its backup. */
function twinFields(twin: Twin | undefined): Partial<PushInfo> {
  if (!twin) return {};
  if (twin.role === 'backup') return { backupOf: twin.mediaSessionId };
  return {
    ...(twin.mediaSessionId ? { backupMediaSessionId: twin.mediaSessionId } : {}),
    ...(twin.error ? { backupError: twin.error } : {}),
  };
}

/** A push's caption counters, once it had a caption. */
function captionCounters(
  captions: { sent: number; replaced: number; dropped: number } | undefined,
): Partial<PushInfo['counters']> {
  return captions
    ? { captionsSent: captions.sent, captionCharactersReplaced: captions.replaced, captionsDropped: captions.dropped }
    : {};
}

/**
 * A push as `find` shows it: Web Call Server's fields, then `state`, `lastError`,
 * `errorCode`, restore attempts, the send buffer and counters. Holds no secret: the destination
 * is shown redacted.
 */
export function describe(t: PushView): PushInfo {
  const output = t.output;
  const buffer = output.buffer;
  const until = t.standby.until;
  const layer = layerSent(t.publisher);
  const source = t.publisher.videoCodec;
  const sentCodec = t.plan.video === 'transcode' ? 'H264' : source === 'H264' || source === 'AV1' ? source : undefined;
  return {
    mediaSessionId: t.mediaSessionId,
    streamName: t.destination.redactedStreamName,
    sourceStreamName: t.publisher.name,
    rtmpUrl: t.destination.redactedRequestedUrl,
    width: t.writer.size?.width ?? 0,
    height: t.writer.size?.height ?? 0,
    resolutionChanges: t.writer.resolutionChanges,
    muted: t.audio.muted,
    soundEnabled: t.audio.sound !== undefined,
    options: t.request.options,
    state: t.state,
    ...(t.lastError ? { lastError: t.lastError } : {}),
    ...(t.errorCode ? { errorCode: t.errorCode } : {}),
    ...(until !== undefined ? { standbyUntil: new Date(until).toISOString() } : {}),
    reconnectAttempt: t.reconnectAttempt,
    ...(isUp(t.state) && t.health.current ? { health: t.health.current } : {}),
    ...(t.config.sendBuffer.enabled
      ? { outputBuffer: { state: buffer?.state, levelMs: buffer?.levelMs ?? 0, bufferings: output.bufferings } }
      : {}),
    transcoding: t.plan.video === 'transcode',
    ...(sentCodec ? { videoCodec: sentCodec } : {}),
    captions: t.request.captions,
    ...(t.request.platform ? { platform: t.request.platform } : {}),
    ...twinFields(t.twin),
    ...(t.plan.video === 'transcode' && t.plan.shape ? { aspect: t.plan.shape.aspect } : {}),
    ...(layer ? { layer } : {}),
    createdAt: new Date(t.createdAt).toISOString(),
    counters: {
      packetsSent: t.input.packets,
      bytesSent: t.input.bytes,
      frames: t.writer.frames,
      drops: t.counters.drops,
      reconnects: t.counters.reconnects,
      sheds: t.counters.sheds,
      framesLost: t.input.framesLost,
      framesDropped: output.framesDropped,
      framesDiscarded: t.input.discarded.frames,
      audioPacketsDiscarded: t.input.discarded.audioPackets,
      audioDiscardedMs: Math.round(t.audioDiscardedMs),
      lagMs: Math.round(output.lagMs),
      ...(output.acknowledgedAt !== undefined ? { acknowledgedAgoMs: monotonicMs() - output.acknowledgedAt } : {}),
      outputBytes: output.written,
      acknowledgedBytes: output.acknowledged,
      ...captionCounters(t.writer.captions),
    },
  };
}
