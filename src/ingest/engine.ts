import type { TypedEmitter } from '../core/events.js';
import type { MediaKind, VideoCodec } from '../media/codecs.js';
import type { RtpSink } from '../media/sinks.js';

/**
 * The boundary between the gateway and a WebRTC implementation. Nothing outside `src/ingest/`
 * touches the engine's own types, so another engine can be added behind the same interface.
 */
export interface IngestTrack {
  readonly kind: MediaKind;
  readonly clockRate: number;
  /** Set for video tracks. */
  readonly videoCodec?: VideoCodec;
  /** Hands the track's decrypted, RTX-unwrapped RTP to `input`; returns the function that stops it. */
  deliverTo(input: RtpSink): () => void;
  /** Asks the sender for a keyframe (RTCP PLI). A no-op for audio. */
  requestKeyframe(): void;
  /** A local stream's track: where its first timestamp stands after the stream's start (see `LocalKinds`). */
  readonly startMs?: number;
  /** Retransmission requests (RTCP NACK) sent for lost packets of this track, when the engine tells. */
  readonly nacksSent?: number;
  /**
   * What the engine counted on this track (when it tells, read every few seconds): RTP received from
   * the publisher, lost on the way to it, and sent on towards the gateway's frame path. Beside the
   * gateway's own count they say at which hop packets go missing.
   */
  readonly engineCounts?: EngineCounts;
  /** Simulcast video: how many layers the publisher sends, lowest first; absent for a single stream. */
  readonly layers?: number;
  /** Simulcast: the layer forwarded now (0 the lowest), undefined while none comes. */
  readonly currentLayer?: number;
  /** Simulcast: told each time the layer forwarded changes. */
  onLayerChange?(listener: (layer: number | undefined) => void): void;
  /**
   * Simulcast: a track of layer `spatial` alone (0 the lowest), forwarded by the engine apart from
   * this one, the next layer down while it stops and itself again once it resumes.
   */
  layer?(spatial: number): Promise<LayerTrack>;
}

/** One simulcast layer of a track, until closed. */
export interface LayerTrack extends IngestTrack {
  close(): void;
}

export interface EngineCounts {
  received: number;
  lost: number;
  sentToGateway: number;
}

export type IngestSessionEvents = {
  connected: [];
  /** The session ended; `reason` says why (peer closed, ICE failed, closed by the gateway). */
  closed: [reason: string];
  /** A message on one of the publisher's data channels (`PUBLISHER_CHANNELS`), as text. */
  message: [channel: string, text: string];
};

/**
 * The data channels a publisher may open beside its media, on an engine that takes them
 * (mediasoup): each negotiated out of band (`negotiated: true` and this id), as mediasoup does not
 * take the in-band opening (DCEP). `captions`: text, or JSON `{text, final?, at?}`, for every push.
 */
export const PUBLISHER_CHANNELS = [{ label: 'captions', streamId: 0 }] as const;

export interface IngestSession extends TypedEmitter<IngestSessionEvents> {
  readonly id: string;
  /** The SDP answer to send back to the publisher. */
  readonly answer: string;
  /** The publisher's tracks, known from the offer: at most one audio and one video. */
  readonly tracks: readonly IngestTrack[];
  readonly videoCodec: VideoCodec | undefined;
  readonly hasAudio: boolean;
  /**
   * Whether an ICE check from the publisher has reached the gateway, on an engine that can tell
   * (mediasoup, ICE-lite: it only answers checks). False for long: the publisher cannot reach any
   * announced address.
   */
  readonly iceChecked?: boolean;
  close(reason?: string): Promise<void>;
}

/** What every engine is configured with. */
export interface EngineOptions {
  /** The only addresses gathered (or listened on) and announced as host candidates. */
  addresses: readonly string[];
  /** This place's UDP ports for WebRTC media. */
  portRange: [number, number];
  /** CIDR blocks ICE may talk to; empty: any unicast address. */
  remoteNetworks: readonly string[];
  videoCodecs: readonly VideoCodec[];
  /** The browser's start and top bitrate, and its floor (kb/s), as hints in the answer. */
  videoBitrateKbps: number;
  videoMinBitrateKbps: number;
  /** A session not connected (ICE and DTLS) after this long is closed and its sockets freed. */
  connectTimeoutMs?: number;
  /** The same for a viewer (WHEP), whose slot a viewer that never connects holds until then. */
  viewerConnectTimeoutMs?: number;
  /**
   * Receive buffer of each media socket (bytes; the kernel caps it at net.core.rmem_max). The
   * default ~200 KB overflows when the event loop is busy for a few tens of milliseconds with many
   * streams: every datagram that does not fit is lost.
   */
  receiveBufferBytes?: number;
  onListenerError?: (event: string, error: unknown) => void;
}

export type ViewSessionEvents = {
  /** The viewer's WebRTC connection is up: media flows to it. */
  connected: [];
  /** The viewer is gone; `reason` says why (it left, its connection failed, the stream ended). */
  closed: [reason: string];
};

/** A viewer of a published stream (WHEP): the publisher's media sent on as it arrives, not transcoded. */
export interface ViewSession extends TypedEmitter<ViewSessionEvents> {
  readonly id: string;
  /** The SDP answer to send back to the viewer. */
  readonly answer: string;
  /** A text message on the viewer's data channel (`captions`), when it opened one; dropped otherwise. */
  send(channel: string, text: string): void;
  close(reason?: string): Promise<void>;
}

export interface IngestEngine {
  /** Answers a publisher's offer. Throws `OfferError` for offers the gateway cannot take. */
  accept(offer: string): Promise<IngestSession>;
  /**
   * Answers a viewer's offer with the media of the publisher `session` (one this engine accepted),
   * an offer its caller has passed through `checkOffer` (the viewers' registry does, before any
   * limit is counted). Throws `OfferError` for offers the gateway cannot take, `not_acceptable` for
   * one that receives none of the stream's codecs of a kind it asks for. Absent: the engine has no
   * viewers.
   */
  view?(session: IngestSession, offer: string): Promise<ViewSession>;
  /**
   * A stream made in the gateway (a mixer's output): an encoder sends its H.264 (constrained
   * baseline, packetization mode 1) and Opus as plain RTP over loopback to the targets returned,
   * and it is published like any other stream. Absent: the engine takes none.
   */
  acceptLocal?(kinds: LocalKinds): Promise<LocalStream>;
  /** Ends what the engine runs besides its sessions (a worker process); the sessions are closed first. */
  close?(): Promise<void>;
}

/**
 * The kinds a local stream carries, and for each where its encoder's first timestamp stands after
 * the stream's start (ms). Its tracks are timed from one start, as their encoder made them, where a
 * publisher's are each timed from the arrival of their first packet.
 */
export type LocalKinds = Partial<Record<MediaKind, { startMs: number }>>;

/** Where an encoder in the gateway sends one kind of a local stream's RTP and RTCP. */
export interface LocalTarget {
  kind: MediaKind;
  /** UDP ports on 127.0.0.1. */
  port: number;
  rtcpPort: number;
  payloadType: number;
  ssrc: number;
}

export interface LocalStream {
  session: IngestSession;
  targets: LocalTarget[];
}
