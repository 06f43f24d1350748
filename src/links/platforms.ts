import { z } from 'zod';
import { invalid } from '../core/errors.js';

/** What of a destination a platform is recognised and checked by. */
interface Endpoint {
  protocol: 'rtmp' | 'rtmps' | 'srt' | 'record';
  host: string;
}

/**
 * What each streaming platform documents of the stream it takes, on its own page: the scheme it
 * ingests, the keyframe interval, the most video bitrate and frame rate, the AAC it wants and the
 * shape its viewers see. A push names its platform (`platform`), or it is recognised from the
 * destination's host. Either way what the platform refuses is refused at startup, naming the field;
 * a platform named also sets the picture's shape for the vertical ones. One recognised from the URL
 * only checks: it never makes a push transcode that was not asked to.
 */

const PLATFORM_NAMES = [
  'youtube',
  'youtube-shorts',
  'twitch',
  'facebook',
  'instagram',
  'tiktok',
  'kick',
  'custom',
] as const;
export type PlatformName = (typeof PLATFORM_NAMES)[number];

export const platformSchema = z
  .enum(PLATFORM_NAMES)
  .describe(
    "The destination's platform: what it documents is checked (and, for the vertical ones, the picture made 9:16); " +
      "recognised from the URL's host when not given",
  );

export interface Platform {
  name: Exclude<PlatformName, 'custom'>;
  /** How an issue names it. */
  title: string;
  /**
   * Where the figures come from: the platform's own page, and OBS Studio's list of services
   * (`plugins/rtmp-services/data/services.json`), which platforms keep.
   */
  sources: readonly string[];
  /** Its ingest hosts, for recognising it from a URL. */
  hosts: RegExp;
  /** Takes RTMPS only. */
  rtmpsOnly: boolean;
  /** Keyframes: what it asks for and the most it takes, in seconds. */
  keyframeIntervalS: { recommended: number; max: number };
  /** The most video bitrate it takes, kb/s, and frame rate; undefined where it documents none. */
  maxVideoKbps?: number;
  maxFps?: number;
  /** The most AAC bitrate it takes, kb/s. */
  maxAudioKbps?: number;
  /** The shape its viewers see, for a vertical platform. */
  aspect?: '9:16';
  /** The video it takes: H.264 over FLV, and the codecs it takes over Enhanced RTMP. */
  videoCodecs: readonly RtmpVideoCodec[];
}

const OBS_SERVICES = 'https://github.com/obsproject/obs-studio/blob/master/plugins/rtmp-services/data/services.json';

const YOUTUBE: Omit<Platform, 'name' | 'hosts'> = {
  title: 'YouTube',
  sources: ['https://support.google.com/youtube/answer/2853702', OBS_SERVICES],
  rtmpsOnly: false,
  keyframeIntervalS: { recommended: 2, max: 4 },
  maxVideoKbps: 51_000,
  maxFps: 60,
  maxAudioKbps: 160,
  // "Video codec: H.264, or HEVC and AV1 over Enhanced RTMP" on its encoder settings page.
  videoCodecs: ['H264', 'AV1', 'HEVC'],
};

const META: Omit<Platform, 'name' | 'title' | 'hosts' | 'sources'> = {
  rtmpsOnly: true,
  keyframeIntervalS: { recommended: 2, max: 4 },
  maxVideoKbps: 9000,
  maxFps: 60,
  maxAudioKbps: 256,
  videoCodecs: ['H264'],
};

/** The table `docs/platforms.md` gives, with each figure's source. */
export const PLATFORMS: readonly Platform[] = [
  { name: 'youtube', hosts: /(^|\.)youtube\.com$/, ...YOUTUBE },
  // The same ingest as YouTube's: named only, never recognised.
  { name: 'youtube-shorts', hosts: /^$/, ...YOUTUBE, aspect: '9:16' },
  {
    name: 'twitch',
    title: 'Twitch',
    sources: [
      'https://www.twitch.tv/creatorcamp/en/paths/going-live/broadcast-recommendations/',
      'https://dev.twitch.tv/docs/video-broadcast/',
      OBS_SERVICES,
    ],
    // Its own hosts, and its ingest points on Amazon IVS (`sfo.contribute.live-video.net`).
    hosts: /(^|\.)twitch\.tv$|^[a-z0-9-]+\.contribute\.live-video\.net$/,
    rtmpsOnly: false,
    keyframeIntervalS: { recommended: 2, max: 2 },
    maxVideoKbps: 6000,
    maxFps: 60,
    maxAudioKbps: 320,
    // Its standard ingest; Enhanced Broadcasting's HEVC and AV1 come only from OBS's multitrack.
    videoCodecs: ['H264'],
  },
  {
    name: 'facebook',
    title: 'Facebook',
    sources: ['https://developers.facebook.com/docs/live-video-api/reference', OBS_SERVICES],
    hosts: /(^|\.)facebook\.com$/,
    ...META,
  },
  // Meta's ingest, as Facebook's; 9:16 at 720x1280 is what its Live Producer announcement recommended.
  {
    name: 'instagram',
    title: 'Instagram',
    sources: ['https://developers.facebook.com/docs/live-video-api/overview'],
    hosts: /(^|\.)instagram\.com$/,
    ...META,
    aspect: '9:16',
  },
  // Neither documents more on a page reachable here than a vertical picture and 2 s keyframes: nothing else is refused.
  {
    name: 'tiktok',
    title: 'TikTok',
    sources: [],
    hosts: /(^|\.)tiktokcdn(-us)?\.com$/,
    rtmpsOnly: false,
    keyframeIntervalS: { recommended: 2, max: 4 },
    aspect: '9:16',
    videoCodecs: ['H264'],
  },
  // Kick's ingest is on Amazon IVS, RTMPS on port 443.
  {
    name: 'kick',
    title: 'Kick',
    sources: [],
    hosts: /^fa723fc1b171\.global-contribute\.live-video\.net$/,
    rtmpsOnly: true,
    keyframeIntervalS: { recommended: 2, max: 2 },
    videoCodecs: ['H264'],
  },
];

/** The platform a push names, or the one its destination's host belongs to; none for `custom`, a recording or another host. */
export function platformOf(
  named: PlatformName | undefined,
  destination: Endpoint,
): { platform: Platform; named: boolean } | undefined {
  if (named === 'custom') return undefined;
  if (named) return { platform: PLATFORMS.find((p) => p.name === named)!, named: true };
  if (destination.protocol !== 'rtmp' && destination.protocol !== 'rtmps') return undefined;
  const host = destination.host.toLowerCase().replace(/\.$/, '');
  const platform = PLATFORMS.find((p) => p.hosts.test(host));
  return platform && { platform, named: false };
}

/** What a push may ask to send (`videoCodec`): the stream's video as it is, or a codec. */
export const REQUESTED_CODECS = ['passthrough', 'h264', 'av1', 'hevc'] as const;
export type RequestedCodec = (typeof REQUESTED_CODECS)[number];

/** A codec a destination may take over RTMP: FLV's H.264, or Enhanced RTMP's. */
export type RtmpVideoCodec = 'H264' | 'AV1' | 'HEVC';

/** What video a destination takes, and who says so (for errors). */
export interface DestinationCodecs {
  codecs: readonly RtmpVideoCodec[];
  /** Who: "youtube", "a recording", "an RTMP server"… */
  by: string;
  /**
   * Whether that is all it takes (a platform, a recording), or only what is sent unasked (a server
   * of the user's, which a `videoCodec` asked for may say takes more).
   */
  strict: boolean;
}

/** What an RTMP server the gateway knows nothing of is sent unasked: H.264, which every one takes. */
export const ANY_RTMP_SERVER: DestinationCodecs = { codecs: ['H264'], by: 'an RTMP server', strict: false };

/** What video `destination` takes: its platform's codecs, a recording's or an SRT destination's (H.264), or any RTMP server's. */
export function destinationCodecs(
  platform: Platform | undefined,
  destination: Pick<Endpoint, 'protocol'>,
): DestinationCodecs {
  if (platform) return { codecs: platform.videoCodecs, by: platform.name, strict: true };
  // ffmpeg 5.1, which writes both, reads no Enhanced RTMP.
  if (destination.protocol === 'record') return { codecs: ['H264'], by: 'a recording', strict: true };
  if (destination.protocol === 'srt') return { codecs: ['H264'], by: 'an SRT destination', strict: true };
  return ANY_RTMP_SERVER;
}

/** What a request asks that a platform checks. */
export interface PlatformChecked {
  fps?: number;
  keyFrameInterval?: number;
  videoBitrate?: number;
  audioBitrate?: number;
}

/** Refuses, naming the field, what `platform` documents it does not take. */
export function checkForPlatform(
  platform: Platform,
  destination: Pick<Endpoint, 'protocol'>,
  request: PlatformChecked,
  /** The field of the destination's URL. */
  field = 'rtmpUrl',
): void {
  const name = platform.name;
  if (platform.rtmpsOnly && destination.protocol !== 'rtmps') {
    throw invalid(field, `${name} takes RTMPS only (rtmps://)`);
  }
  if (destination.protocol !== 'rtmp' && destination.protocol !== 'rtmps') {
    throw invalid(field, `${name} takes RTMP${platform.rtmpsOnly ? 'S' : ''} only`);
  }
  const over = (asked: number | undefined, most: number | undefined): boolean =>
    asked !== undefined && most !== undefined && asked > most;
  if (over(request.fps, platform.maxFps))
    throw invalid('fps', `${name} takes at most ${platform.maxFps} frames a second`);
  if (over(request.videoBitrate, platform.maxVideoKbps))
    throw invalid('videoBitrate', `${name} takes at most ${platform.maxVideoKbps} kb/s`);
  if (over(request.audioBitrate, platform.maxAudioKbps))
    throw invalid('audioBitrate', `${name} takes at most ${platform.maxAudioKbps} kb/s of audio`);
  if (
    request.keyFrameInterval &&
    request.fps &&
    request.keyFrameInterval / request.fps > platform.keyframeIntervalS.max
  ) {
    const seconds = Math.round((request.keyFrameInterval / request.fps) * 10) / 10;
    throw invalid(
      'keyFrameInterval',
      `${seconds} s at ${request.fps} fps; ${name} takes keyframes at most ${platform.keyframeIntervalS.max} s apart`,
    );
  }
}
