import type { SecureContext } from 'node:tls';
import type { CaptionMode } from '../captions/cea608.js';
import type { Logger } from 'pino';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import type { DestinationResolver } from '../security/destination-policy.js';
import type { EncodingSettings, VideoRequest } from '../pipeline/encoding.js';
import type { SendBufferSettings } from '../links/send-buffer.js';
import { ffmpegPipelines } from '../pipeline/ffmpeg-pipeline.js';
import type { PipelineFactory } from '../pipeline/pipeline.js';
import type { SharedEncoders } from '../pipeline/shared-encoders.js';
import type { RestoreSettings } from './restore.js';
import { rtmpLinks } from '../links/rtmp-link.js';
import { srtLinks } from '../links/srt-link.js';
import { recordingUrl, type Destination } from '../links/destination.js';
import { recordLinks, type RecordingEvent, type RecordSettings } from '../links/record-link.js';
import type { Slots } from '../core/slots.js';
import type { LinkFactory } from '../links/link.js';
import type { DestinationCodecs } from '../links/platforms.js';
import type { TimelineOrigin } from './timeline.js';

export interface PushSettings {
  ffmpegPath: string;
  /** Starts and keeps track of every ffmpeg of the gateway. */
  ffmpeg: FfmpegSupervisor;
  /** Where sound files for `sound_on` are found. */
  mediaDir: string;
  encoding: EncodingSettings;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  analyzeDurationUs: number;
  /** Connecting to the destination and publishing must take no longer. */
  connectTimeoutMs: number;
  flashVer: string;
  /** Local address of the outbound RTMP connection; undefined lets the system choose. */
  localAddress?: string;
  /** Whether onMetaData is sent. */
  sendMetadata: boolean;
  /** TLS context for RTMPS: the certificate authorities trusted. */
  secureContext: SecureContext;
  /** Pushes in all, and per stream. */
  limits: { total: number; perStream: number };
  /** Active pushes of the whole gateway, shared with the other workers; the service's own by default. */
  slots?: Slots;
  /** Throws (503) when the gateway takes on no more work now. */
  admit?: (what: string) => void;
  /**
   * Whether the machine is out of CPU now: a push whose encoder falls behind then says so
   * (`behindSince`), and the machine's shedder may shed one (`Shedder`).
   */
  saturated?: () => boolean;
  /** Looks the destination host up and checks every answer against the destination policy. */
  resolveDestination: DestinationResolver;
  /** Restoring the output after a drop. */
  restore: RestoreSettings;
  /** Output the destination has not acknowledged for this long is a drop. */
  stallTimeoutMs: number;
  /** A destination lagging more than this (ms) gets media dropped up to a keyframe; 0: never. */
  maxLagMs: number;
  /** Output buffering in front of each link. */
  sendBuffer: SendBufferSettings;
  /** How long a push whose publisher went away holds the output with a still picture; 0: it ends at once. */
  publisherGraceMs: number;
  /** Where and how `record://` pushes record. */
  record: RecordSettings;
  /** The encoders pushes of one stream share: AAC, and transcoded renditions. */
  sharedEncoders: SharedEncoders;
}

/** What a push needs of the gateway's settings. */
export type PushConfig = Pick<PushSettings, 'startTimeoutMs' | 'restore' | 'sendMetadata' | 'encoding' | 'sendBuffer'>;

/** A push's startup request, as far as it keeps it. */
export interface PushOptions {
  /** The id it is known by (`mediaSessionId`); a new one when absent. */
  id?: string;
  /** Startup options as the request gave them (`options` in Web Call Server's API). */
  options: object;
  /** The video fields of the request: the plan is made again for a publisher that comes back. */
  video: VideoRequest;
  /** The destination's platform, named or recognised from its host. */
  platform?: string;
  /** Time 0 of its timeline: a backup's is its primary's. */
  origin?: TimelineOrigin;
  /** The video the destination takes (any RTMP server's when absent). */
  codecs?: DestinationCodecs;
  /** The simulcast layer its publisher sends (0 the lowest), of a simulcast stream. */
  spatial?: number;
  /** How it shows the stream's captions (`captions` in the request: true is roll-up), or false: not at all. */
  captions: CaptionMode | false;
}

/** What a push opens its output with: links to its destination, and pipelines. */
export interface PushParts {
  links: LinkFactory;
  pipelines: PipelineFactory;
}

/** Which push the parts are for, and what it was asked. */
export interface PartsFor {
  stream: string;
  mediaSessionId: string;
  flashVer?: string;
  /** Where the first connection goes (looked up and checked at startup). */
  pinnedAddress?: string;
  /** Told of a recording's parts. */
  onRecording: (event: RecordingEvent) => void;
}

/** The real parts: RTMP or SRT links to `destination` (the first to `pinnedAddress`), or recordings; ffmpeg pipelines. */
export function pushParts(destination: Destination, settings: PushSettings, log: Logger, push: PartsFor): PushParts {
  const onListenerError = (event: string, error: unknown): void =>
    log.error({ err: error, event }, 'push listener failed');
  const onBufferState = (state: string): void => log.debug({ state }, 'send buffer');
  const spawn = (args: readonly string[], fd3?: number) =>
    settings.ffmpeg.spawn(settings.ffmpegPath, args, onListenerError, fd3);
  const links = (): LinkFactory => {
    switch (destination.protocol) {
      case 'srt':
        return srtLinks(destination, { ...settings, spawn, onBufferState }, push.pinnedAddress);
      case 'record':
        return recordLinks(
          { ...settings, spawn, onBufferState },
          { stream: push.stream, mediaSessionId: push.mediaSessionId, ...recordingUrl(destination.url) },
          push.onRecording,
        );
      default:
        return rtmpLinks(
          destination,
          { ...settings, flashVer: push.flashVer ?? settings.flashVer, onListenerError, onBufferState },
          push.pinnedAddress,
        );
    }
  };
  return {
    links: links(),
    pipelines: settings.sharedEncoders.pipelines(
      ffmpegPipelines({
        ...settings,
        spawn: (args, videoInput) =>
          settings.ffmpeg.spawn(settings.ffmpegPath, args, onListenerError, videoInput ? 'video' : undefined),
        log,
      }),
    ),
  };
}
