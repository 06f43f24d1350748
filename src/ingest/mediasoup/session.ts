import type { types } from 'mediasoup';
import { TypedEmitter, type ListenerErrorHandler } from '../../core/events.js';
import { OPUS_CLOCK_RATE, VIDEO_CLOCK_RATE, type MediaKind, type VideoCodec } from '../../media/codecs.js';
import type { EngineCounts, IngestSession, IngestSessionEvents, LayerTrack } from '../engine.js';
import type { HandedTrack } from './rtp-handoff.js';
import type { RtpSink } from '../../media/sinks.js';

export interface MediasoupSessionOptions {
  videoCodec: VideoCodec | undefined;
  hasAudio: boolean;
  connectTimeoutMs?: number;
  /** Whether the publisher's address (the ICE tuple mediasoup chose) may be talked to. */
  remoteAllowed: (address: string) => boolean;
  onListenerError?: ListenerErrorHandler;
}

/**
 * Follows a peer's WebRTC transport: `connected` once DTLS is; `close` when DTLS fails or closes,
 * when ICE consent is lost, when the peer's address is outside the allowed networks, when the
 * worker closes, or when it has not connected within the timeout (whose timer is returned).
 */
export function watchConnection(
  transport: types.WebRtcTransport,
  options: Pick<MediasoupSessionOptions, 'connectTimeoutMs' | 'remoteAllowed'>,
  who: string,
  connected: () => void,
  close: (reason: string) => void,
): NodeJS.Timeout | undefined {
  const timeoutMs = options.connectTimeoutMs;
  const timer = timeoutMs
    ? setTimeout(() => close(`ICE and DTLS not done within ${timeoutMs / 1000} s`), timeoutMs)
    : undefined;
  transport.on('dtlsstatechange', (state) => {
    if (state === 'connected') {
      clearTimeout(timer);
      connected();
    } else if (state === 'failed' || state === 'closed') close(`WebRTC connection ${state}`);
  });
  transport.on('icestatechange', (state) => {
    if (state === 'disconnected' || state === 'closed')
      close(`WebRTC connection ${state === 'disconnected' ? 'lost (no ICE consent)' : 'closed'}`);
  });
  transport.on('iceselectedtuplechange', (tuple) => {
    if (!options.remoteAllowed(tuple.remoteIp ?? ''))
      close(`the ${who}'s address is outside webrtc_ice_remote_networks`);
  });
  // The worker process ended under it: the engine tells why (worker died) first when it can.
  transport.on('routerclose', () => close('the media worker closed'));
  return timer;
}

/**
 * How often a track reads mediasoup's counts for it (ms): the retransmission requests sent, the RTP
 * received and sent on. Counters for `find` and the metrics, so up to this much behind; each read
 * is two round trips to the media worker (producer, consumer): read every 10 s instead of 2 s,
 * 2-4 % less CPU per push at 16 pushes (two pairs alone, A B A B).
 */
export const STATS_INTERVAL_MS = 10_000;

/**
 * One published stream in mediasoup: a publisher on a WebRtcTransport (`webRtc`), or a stream made
 * in the gateway whose encoder sends plain RTP over loopback (`local`: a mixer's output).
 */
export class MediasoupSession extends TypedEmitter<IngestSessionEvents> implements IngestSession {
  answer = '';
  readonly tracks: MediasoupTrack[] = [];
  readonly videoCodec: VideoCodec | undefined;
  readonly hasAudio: boolean;
  #closed = false;
  #connectTimer: NodeJS.Timeout | undefined;
  readonly #channels: types.DataConsumer[] = [];
  #iceChecked: () => boolean = () => true;

  private constructor(
    private readonly transports: readonly types.Transport[],
    options: Pick<MediasoupSessionOptions, 'videoCodec' | 'hasAudio' | 'onListenerError'>,
  ) {
    super(options.onListenerError);
    this.videoCodec = options.videoCodec;
    this.hasAudio = options.hasAudio;
  }

  /**
   * A publisher on a WebRtcTransport. Connected once DTLS is; closed when DTLS fails or closes,
   * when ICE consent is lost, when the publisher's address is outside the allowed networks, or
   * when it has not connected within the timeout.
   */
  static webRtc(transport: types.WebRtcTransport, options: MediasoupSessionOptions): MediasoupSession {
    const session = new MediasoupSession([transport], options);
    session.#iceChecked = () => transport.closed || transport.iceState !== 'new';
    session.#connectTimer = watchConnection(
      transport,
      options,
      'publisher',
      () => session.safeEmit('connected'),
      (reason) => void session.close(reason),
    );
    return session;
  }

  /**
   * A stream the gateway makes, its RTP sent by an encoder to `transports` (plain, on loopback, one
   * per kind). Connected when the first packet came; closed with its router.
   */
  static local(
    transports: readonly types.PlainTransport[],
    options: Pick<MediasoupSessionOptions, 'videoCodec' | 'hasAudio' | 'onListenerError'>,
  ): MediasoupSession {
    const session = new MediasoupSession(transports, options);
    let connected = false;
    for (const transport of transports) {
      transport.once('tuple', () => {
        if (connected) return;
        connected = true;
        session.safeEmit('connected');
      });
      transport.on('routerclose', () => void session.close('the media worker closed'));
    }
    return session;
  }

  /** The publisher's track of `kind`, which viewers consume. */
  producer(kind: MediaKind): types.Producer | undefined {
    return this.tracks.find((t) => t.kind === kind && !t.producer.closed)?.producer;
  }

  get id(): string {
    return this.transports[0]!.id;
  }

  get iceChecked(): boolean {
    return this.#iceChecked();
  }

  /** A data channel of the publisher's, read through `consumer`: each message is told (`message`) as text. */
  addChannel(label: string, consumer: types.DataConsumer): void {
    this.#channels.push(consumer);
    consumer.on('message', (message: Buffer) => this.safeEmit('message', label, message.toString('utf8')));
  }

  /** `startMs`: a local stream's track (see `LocalKinds`); `consumeLayer`: a consumer of one simulcast layer. */
  addTrack(
    kind: MediaKind,
    producer: types.Producer,
    handed: HandedTrack,
    startMs?: number,
    consumeLayer?: (spatial: number) => Promise<HandedTrack>,
  ): void {
    this.tracks.push(
      new MediasoupTrack(kind, kind === 'video' ? this.videoCodec : undefined, producer, handed, startMs, consumeLayer),
    );
  }

  async close(reason = 'closed by the gateway'): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#connectTimer);
    for (const track of this.tracks) track.close();
    for (const channel of this.#channels) if (!channel.closed) channel.close();
    // Closing a transport closes its producers, and with them their consumers.
    for (const transport of this.transports) if (!transport.closed) transport.close();
    this.safeEmit('closed', reason);
    this.removeAllListeners();
  }
}

/**
 * A published track: its RTP comes from its consumer on the engine's hand-off (`rtp-handoff.ts`).
 * Of a simulcast producer, the consumer forwards one layer (the top one, unless asked another),
 * the next one down while it stops, and switches back with a keyframe once it resumes.
 */
export class MediasoupTrack implements LayerTrack {
  readonly clockRate: number;
  nacksSent = 0;
  engineCounts: EngineCounts = { received: 0, lost: 0, sentToGateway: 0 };
  readonly layers: number | undefined;
  currentLayer: number | undefined;
  readonly #layerListeners: ((layer: number | undefined) => void)[] = [];
  readonly #stats: NodeJS.Timeout;

  constructor(
    readonly kind: MediaKind,
    readonly videoCodec: VideoCodec | undefined,
    readonly producer: types.Producer,
    protected readonly handed: HandedTrack,
    readonly startMs?: number,
    private readonly consumeLayer?: (spatial: number) => Promise<HandedTrack>,
  ) {
    this.clockRate = kind === 'video' ? VIDEO_CLOCK_RATE : OPUS_CLOCK_RATE;
    this.#stats = setInterval(() => void this.#readStats(), STATS_INTERVAL_MS).unref();
    const { consumer } = handed;
    if (consumer.type !== 'simulcast') return;
    this.layers = producer.rtpParameters.encodings?.length;
    this.currentLayer = consumer.currentLayers?.spatialLayer;
    consumer.on('layerschange', (layers) => {
      const layer = layers?.spatialLayer;
      if (layer === this.currentLayer) return;
      this.currentLayer = layer;
      for (const listener of this.#layerListeners) listener(layer);
    });
  }

  onLayerChange(listener: (layer: number | undefined) => void): void {
    this.#layerListeners.push(listener);
  }

  async layer(spatial: number): Promise<LayerTrack> {
    if (!this.consumeLayer || this.layers === undefined) throw new Error('the track has no simulcast layers');
    return new SimulcastLayer(this.kind, this.videoCodec, this.producer, await this.consumeLayer(spatial));
  }

  deliverTo(input: RtpSink): () => void {
    return this.handed.deliverTo(input);
  }

  requestKeyframe(): void {
    const { consumer } = this.handed;
    if (this.kind !== 'video' || consumer.closed) return;
    consumer.requestKeyFrame().catch(() => {
      // Closing: the next request will tell.
    });
  }

  /** Stops reading its counts (its consumer ends with the session's transport). */
  close(): void {
    clearInterval(this.#stats);
  }

  async #readStats(): Promise<void> {
    if (this.producer.closed) return this.close();
    try {
      const [received, sent] = await Promise.all([this.producer.getStats(), this.handed.consumer.getStats()]);
      this.nacksSent = received.reduce((sum, s) => sum + (s.nackCount ?? 0), 0);
      this.engineCounts = {
        received: received.reduce((sum, s) => sum + (s.packetCount ?? 0), 0),
        lost: received.reduce((sum, s) => sum + Math.max(0, s.packetsLost ?? 0), 0),
        sentToGateway: sent.filter((s) => s.type === 'outbound-rtp').reduce((sum, s) => sum + (s.packetCount ?? 0), 0),
      };
    } catch {
      // Closed meanwhile.
    }
  }
}

/** One layer of a simulcast track, on a consumer of its own: closing it ends the consumer. */
class SimulcastLayer extends MediasoupTrack {
  override close(): void {
    super.close();
    if (!this.handed.consumer.closed) this.handed.consumer.close();
  }
}
