/** The SDK's public constants and types: statuses, options, events. */
import type {
  CheckReport as GatewayCheckReport,
  DestinationRequest as GatewayDestinationRequest,
  DestinationState as ProtocolDestinationState,
  MixerInfo as GatewayMixerInfo,
  StartMixerMessage,
} from '../../src/signaling/protocol.js';

export const SESSION_STATUS = {
  ESTABLISHED: 'ESTABLISHED',
  RECONNECTING: 'RECONNECTING',
  DISCONNECTED: 'DISCONNECTED',
  FAILED: 'FAILED',
} as const;
/** `PUBLISHING`: the gateway receives the stream (whether a destination took it is told by `DESTINATION`). */
export const STREAM_STATUS = {
  PUBLISHING: 'PUBLISHING',
  RECONNECTING: 'RECONNECTING',
  UNPUBLISHED: 'UNPUBLISHED',
  FAILED: 'FAILED',
  DESTINATION: 'DESTINATION',
} as const;
/**
 * A destination's state: `starting` (connecting to the RTMP server), `live` (the server accepted the
 * stream and the media goes out), `reconnecting` (the output or the connection to the gateway broke
 * and is being restored), `standby` (the publisher is away; the gateway holds the broadcast with the
 * last picture), `failed` (given up: `reason` says why), `stopped` (ended).
 */
export const DESTINATION_STATE = {
  STARTING: 'starting',
  LIVE: 'live',
  RECONNECTING: 'reconnecting',
  STANDBY: 'standby',
  FAILED: 'failed',
  STOPPED: 'stopped',
} as const satisfies {
  [S in ProtocolDestinationState as Uppercase<S>]: S;
};

export type SessionStatus = (typeof SESSION_STATUS)[keyof typeof SESSION_STATUS] | 'NEW';
export type StreamStatus =
  Exclude<(typeof STREAM_STATUS)[keyof typeof STREAM_STATUS], 'DESTINATION'> | 'NEW' | 'PENDING';
export type DestinationState = (typeof DESTINATION_STATE)[keyof typeof DESTINATION_STATE];

/** How the SDK comes back after a drop: waits of `initialDelayMs`, growing ×`factor` up to `maxDelayMs` (+0-25 %). */
export interface ReconnectOptions {
  /** Default 500 ms. */
  initialDelayMs?: number;
  /** Default 10 000 ms. */
  maxDelayMs?: number;
  /** Default 2. */
  factor?: number;
  /** Attempts before giving up; default 0: never. */
  maxAttempts?: number;
}

export interface SessionOptions {
  /** The gateway's address: `ws://host:8080`, `wss://host`, or an http(s) URL of the same server. */
  urlServer: string;
  /**
   * A publish token from your backend (a publish key or a JWT it signed), sent with each publish
   * over the WebSocket, never in a URL. Needed when the gateway requires publish authorization.
   */
  token?: string;
  /**
   * When the WebSocket or a peer connection drops, reconnect and publish the same streams again, so
   * the gateway's pushes (waiting in standby) go on in the same RTMP sessions. On by default;
   * `false` turns it off.
   */
  reconnect?: boolean | ReconnectOptions;
}

/** An RTMP destination of a stream. */
export interface DestinationOptions {
  /** Names the destination in its events; by default `d1`, `d2`, ... (letters, digits, `_ . : -`). */
  id?: string;
  rtmpUrl: string;
  /** Take the RTMP stream name from the URL's last path segment (the stream key) instead of prefix + name. */
  rtmpTransponderFullUrl?: boolean;
  /** The destination's platform: what it documents is checked at startup, and a vertical one (`youtube-shorts`, `instagram`, `tiktok`) makes the picture 9:16. */
  platform?: 'youtube' | 'youtube-shorts' | 'twitch' | 'facebook' | 'instagram' | 'tiktok' | 'kick' | 'custom';
  /** What the push makes of the picture, as `/rest-api/push/startup` takes it: each transcodes. */
  height?: number;
  width?: number;
  fps?: number;
  /** In frames. */
  keyFrameInterval?: number;
  /** kb/s. */
  videoBitrate?: number;
  audioBitrate?: number;
  /** A picture of its own shape, `W:H`: `'9:16'` for TikTok, Instagram Live or YouTube Shorts (720x1280 unless `height` says). */
  aspect?: string;
  /** With `aspect`: the part of the source kept, or a fraction from 0 (left or top) to 1. Default `center`. */
  crop?: 'center' | 'left' | 'right' | number;
  /** With `aspect`, instead of `crop`: the whole source on a blurred copy of itself (`'blur'`) or a `#rrggbb` colour. */
  fit?: string;
  /**
   * A simulcast layer of the stream, sent as it comes (no transcode): `'low'` (a quarter of the
   * camera's height), `'medium'` (half), `'high'`, or the tallest layer up to a height. The stream is
   * then published with simulcast; without it, the push transcodes to that size.
   */
  layer?: 'low' | 'medium' | 'high' | number;
  /** When the browser stops sending the layer (its bandwidth fell): `'switch'` down and back (default), or `'pin'` it, standby meanwhile. */
  layerPolicy?: 'switch' | 'pin';
  /**
   * The video sent: `'passthrough'` (the stream's H.264 or AV1 as it is), `'h264'` (transcoded unless
   * it is), `'av1'` (an AV1 stream passed through); by default passed through where the destination
   * takes the codec (YouTube takes AV1), else H.264.
   */
  videoCodec?: 'passthrough' | 'h264' | 'av1' | 'hevc';
}

/**
 * What `session.checkDestination` tells: how far a connection to the destination got, no media sent.
 * Written out here because the SDK's published types import nothing; `SAME_CHECK_REPORT` below has
 * the compiler hold it equal, field for field, to the gateway's report (`src/outputs/check-report.ts`).
 */
export interface CheckReport {
  /** Every step asked for succeeded. */
  ok: boolean;
  /** The destination, its secrets shown as `***`. */
  rtmpUrl: string;
  /** A connection was made and the server answered the handshake. */
  reachable: boolean;
  /** RTMP: `connect` accepted (the application, its authentication); SRT: the session accepted; null when not reached. */
  applicationAccepted: boolean | null;
  /** With `publish`: the stream key accepted (SRT: the stream id and passphrase); null when not asked or not reached. */
  keyAccepted: boolean | null;
  elapsedMs: number;
  /** As a push would fail. */
  error?: 'destination_refused' | 'destination_unreachable' | 'internal';
  /** Why, its secrets shown as `***`. */
  message?: string;
}

/** Whether two types are the same both ways (optional and required fields alike). */
type Same<A, B> = [Required<A>, A] extends [Required<B>, B]
  ? [Required<B>, B] extends [Required<A>, A]
    ? true
    : false
  : false;
/** The compiler refuses the SDK's `CheckReport` once it differs from the gateway's. */
const SAME_CHECK_REPORT: Same<CheckReport, GatewayCheckReport> = true;
void SAME_CHECK_REPORT;
/** Nor a destination that differs from what the gateway takes of one (its `id` is the SDK's to choose). */
const SAME_DESTINATION: Same<Omit<DestinationOptions, 'id'>, Omit<GatewayDestinationRequest, 'id'>> = true;
void SAME_DESTINATION;

/** A mixer's layout: see the REST API's `/rest-api/mixer/startup`. */
export type MixerLayout = 'grid' | 'side-by-side' | 'picture-in-picture' | 'speaker' | 'desktop';

/** A mixer to start (`session.startMixer`): the fields of `/rest-api/mixer/startup`. */
export interface MixerOptions {
  /** `mixer://name`. */
  uri: string;
  /** The stream it publishes; the mixer's name by default. */
  localStreamName?: string;
  /** false: its inputs' sound alone (an audio room, a radio show). */
  hasVideo?: boolean;
  hasAudio?: boolean;
  layout?: MixerLayout;
  /** Picture-in-picture: where the small pictures stand, and their width as a fraction of the picture's. */
  pip?: { corner?: 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right'; size?: number };
  width?: number;
  height?: number;
  fps?: number;
  /** kb/s. */
  videoBitrate?: number;
  audioBitrate?: number;
  /** `#rrggbb`, or an image file of the gateway's media folder. */
  background?: string;
  watermark?: string;
  overlays?: { file: string; x?: number; y?: number; width?: number; opacity?: number }[];
}

/** A mixer as the gateway tells it: its settings and its inputs. */
export interface MixerInfo {
  uri: string;
  localStreamName: string;
  layout: MixerLayout;
  width: number;
  height: number;
  fps: number;
  background: string;
  hasVideo: boolean;
  hasAudio: boolean;
  createdAt: string;
  /** Pictures it has made. */
  frames: number;
  inputs: {
    streamName: string;
    slot: number;
    /** Its stream publishes now (otherwise its slot shows a placeholder). */
    publishing: boolean;
    audioMuted: boolean;
    volume: number;
    label: string;
  }[];
}

/** The names of the REST API's startup that are Web Call Server's, for its scripts: the SDK has its own. */
type WcsOnly = 'mixerLayoutClass' | 'mixerVideoWidth' | 'mixerVideoHeight' | 'mixerVideoFps' | 'mixerVideoBitrateKbps';
/**
 * The compiler refuses the SDK's mixer types once they differ from the gateway's: the options by
 * their names (Web Call Server's apart) and each as the gateway takes it (which also takes the
 * strings Web Call Server writes), the mixer as the gateway tells it.
 */
const SAME_MIXER_OPTION_NAMES: Same<
  Record<keyof MixerOptions, 1>,
  Record<Exclude<keyof StartMixerMessage['mixer'], WcsOnly>, 1>
> = true;
const MIXER_OPTIONS_TAKEN = (options: MixerOptions): StartMixerMessage['mixer'] => options;
const SAME_MIXER_INFO: Same<MixerInfo, GatewayMixerInfo> = true;
void SAME_MIXER_OPTION_NAMES;
void MIXER_OPTIONS_TAKEN;
void SAME_MIXER_INFO;

/** A destination to check before going live (`session.checkDestination`). */
export interface CheckOptions {
  rtmpUrl: string;
  rtmpTransponderFullUrl?: boolean;
  /** Also publish then unpublish at once: whether the stream key is accepted. */
  publish?: boolean;
  /** The stream it would be pushed from (prefix-mode naming, the publish token's grant); `check` by default. */
  name?: string;
  /** A publish token for this check, in place of the session's. */
  token?: string;
}

export interface StreamOptions {
  name: string;
  /** An element to show the local preview in (a <video> is created inside it), or a <video> itself. */
  display?: HTMLElement;
  /** getUserMedia constraints; by default 1280x720 video and audio. */
  constraints?: MediaStreamConstraints;
  /** Where the gateway republishes the stream once it is publishing. */
  destinations?: DestinationOptions[];
  /** One destination (the same as `destinations: [{ id: 'rtmpUrl', rtmpUrl, rtmpTransponderFullUrl }]`). */
  rtmpUrl?: string;
  rtmpTransponderFullUrl?: boolean;
  /** Publish this stream instead of asking for the camera. */
  mediaStream?: MediaStream;
  /**
   * Publish three simulcast layers of the camera (full size, half and a quarter), so that
   * destinations can take a lower one without a transcode. On when a destination given here names a
   * `layer`.
   */
  simulcast?: boolean;
  /**
   * The video codec to ask the browser for: `av1` where both the browser and the gateway can (the
   * gateway then passes it untouched to destinations that take AV1, such as YouTube, and transcodes
   * it to H.264 for the rest: ask for it when every destination takes it); H.264 otherwise, and by
   * default.
   */
  preferCodec?: 'av1' | 'h264';
  /** A publish token for this stream, instead of the session's. */
  token?: string;
}

/** A destination as last told by the gateway. */
export interface DestinationStatus {
  id: string;
  state: DestinationState;
  /** The destination with its stream key, password and query values masked. */
  url?: string;
  /** Why it reconnects, waits or failed. */
  reason?: string;
  /** Why it failed to start: `destination_refused`, `destination_unreachable`, `forbidden`, ... */
  code?: string;
  /** The option at fault when the gateway refused it (`destination.rtmpUrl`, `destinations.1.rtmpUrl`). */
  field?: string;
  /** The gateway's push, as the REST API's find shows it. */
  mediaSessionId?: string;
}

/** What a publish sends, measured over the last interval. */
export interface SendStats {
  bitrateKbps: number;
  frameRate: number;
  width: number;
  height: number;
}

export type SessionEvent =
  | { status: 'ESTABLISHED'; info?: string }
  | { status: 'RECONNECTING'; info: string; attempt: number; delayMs: number }
  | { status: 'DISCONNECTED'; info: string }
  | { status: 'FAILED'; info: string };

export type StreamEvent =
  | { status: 'PUBLISHING' }
  | { status: 'RECONNECTING'; info: string; attempt: number; delayMs: number }
  | { status: 'UNPUBLISHED'; info: string }
  | { status: 'FAILED'; info: string; field?: string }
  | { status: 'DESTINATION'; destination: DestinationStatus };

/** Details passed to status handlers (any of the events above). */
export type StatusEvent = SessionEvent | StreamEvent;

/** Typed status events: `on(status, handler)` gets the event of that status. */
export class Emitter<E extends { status: string }> {
  readonly #handlers = new Map<string, ((event: E) => void)[]>();
  on<S extends E['status']>(status: S, handler: (event: Extract<E, { status: S }>) => void): this {
    // Called only with events of its status (`emit`), which are the `Extract` it takes.
    this.#handlers.set(status, [...(this.#handlers.get(status) ?? []), handler as (event: E) => void]);
    return this;
  }
  protected emit(event: E): void {
    for (const handler of this.#handlers.get(event.status) ?? []) {
      try {
        handler(event);
      } catch (error) {
        console.error('gateway SDK: a status handler threw', error);
      }
    }
  }
}
