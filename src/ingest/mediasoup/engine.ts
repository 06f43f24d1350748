import { trackSize } from '../../core/tracked.js';
import type { types } from 'mediasoup';
import { isIPv6 } from 'node:net';
import { unavailable } from '../../core/errors.js';
import { RemoteAddressFilter, filterCandidates } from '../address-filter.js';
import {
  PUBLISHER_CHANNELS,
  type EngineOptions,
  type IngestEngine,
  type IngestSession,
  type LocalKinds,
  type LocalStream,
  type ViewSession,
} from '../engine.js';
import { checkOffer } from '../offer-check.js';
import { OfferError, selectCodecs, withBitrateHints } from '../sdp.js';
import { createLocalStream } from './local.js';
import { answerSdp, DATA_MESSAGE_MAX_BYTES, parseOffer, producerParameters } from './offer.js';
import { createHandoff, type HandedTrack, type HandoffKind, type RtpHandoff } from './rtp-handoff.js';
import { MediasoupSession } from './session.js';
import { MEDIA_CODECS } from './codecs.js';
import { Viewing } from './viewing.js';

export interface MediasoupEngineOptions extends EngineOptions {
  /** How the publishers' RTP leaves the worker for the gateway (`rtp-handoff.ts`); plain by default. */
  rtpHandoff?: HandoffKind;
  /** Told when the worker process died and was replaced: its publishers were told lost. */
  onWorkerDied?: (error: Error) => void;
}

/**
 * What a browser's lower simulcast layers take beside its top one: Chromium's defaults for a 720p
 * camera are 200 kb/s for 320x180 and 700 kb/s for 640x360.
 */
const SIMULCAST_LOWER_LAYERS_KBPS = 900;

/** One mediasoup worker process, its router, and the WebRTC server every publisher connects through. */
interface Plant {
  worker: types.Worker;
  router: types.Router;
  server: types.WebRtcServer;
  /** The WHEP viewers of its publishers, each sent from a router of its own payload types. */
  viewing: Viewing;
  /** Where the publishers' data channels are read (made at the first). */
  channels?: Promise<types.DirectTransport>;
}

/**
 * WebRTC ingest in mediasoup's C++ worker: ICE, DTLS, SRTP, retransmissions, keyframe requests and
 * bandwidth estimation run there, and each publisher's RTP reaches the gateway's frame path through
 * its hand-off (`rtp-handoff.ts`: plain RTP over loopback to a socket of its own by default, or a
 * DirectTransport's messages). One worker process serves this place (a worker thread, or the main
 * thread); a worker that dies is replaced, and its publishers are told lost so that they come back.
 */
export class MediasoupEngine implements IngestEngine {
  readonly #remoteFilter: RemoteAddressFilter;
  readonly #announced: ReadonlySet<string>;
  readonly #sessions = new Set<MediasoupSession>();
  #plant: Promise<Plant> | undefined;
  #workerPid: number | undefined;
  #closed = false;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: MediasoupEngine): void {
    trackSize('mediasoup_sessions', owner, (self) => self.#sessions.size);
  }

  constructor(private readonly options: MediasoupEngineOptions) {
    MediasoupEngine.#trackSizes(this);
    this.#remoteFilter = new RemoteAddressFilter(options.remoteNetworks, false);
    this.#announced = new Set(options.addresses);
  }

  async accept(offer: string): Promise<IngestSession> {
    checkOffer(offer, { dataChannel: true });
    const selection = selectCodecs(
      filterCandidates(offer, () => false),
      this.options.videoCodecs,
    );
    const parsed = parseOffer(offer, selection);
    // Simulcast: the lower layers come on top of the configured bitrate, which is the top layer's.
    const lowerLayersKbps = parsed.media.some((m) => m.rids) ? SIMULCAST_LOWER_LAYERS_KBPS : 0;
    const plant = await this.#ready();
    const transport = await plant.router.createWebRtcTransport({
      webRtcServer: plant.server,
      enableUdp: true,
      enableTcp: false,
      initialAvailableOutgoingBitrate: 100_000,
      ...(parsed.data ? { enableSctp: true, maxSctpMessageSize: DATA_MESSAGE_MAX_BYTES } : {}),
    });
    const session = MediasoupSession.webRtc(transport, {
      videoCodec: selection.video?.codec,
      hasAudio: selection.audio !== undefined,
      connectTimeoutMs: this.options.connectTimeoutMs,
      remoteAllowed: (address) => this.#remoteFilter.allows(address),
      onListenerError: this.options.onListenerError,
    });
    this.#sessions.add(session);
    // Each stream's RTP reaches the gateway on a socket of its own: what its receive buffer must
    // hold while the gateway's event loop is held is that stream's, not every stream's of the worker.
    let handoff: RtpHandoff | undefined;
    let ended = false;
    session.on('closed', () => {
      ended = true;
      this.#sessions.delete(session);
      handoff?.close();
    });
    try {
      handoff = await this.#handoff(plant);
      if (ended) {
        handoff.close();
        throw unavailable("the publisher's session ended while it was being set up");
      }
      try {
        await transport.setMaxIncomingBitrate((this.options.videoBitrateKbps + lowerLayersKbps) * 1000 + 200_000);
        await transport.connect({ dtlsParameters: { role: parsed.remoteRole, fingerprints: parsed.fingerprints } });
        for (const media of parsed.media) {
          const producer = await transport.produce({ kind: media.kind, rtpParameters: producerParameters(media) });
          const consumeLayer = (spatial: number): Promise<HandedTrack> => handoff!.consume(producer.id, spatial);
          session.addTrack(media.kind, producer, await handoff.consume(producer.id), undefined, consumeLayer);
        }
        if (parsed.data) {
          const reader = await (plant.channels ??= plant.router.createDirectTransport({
            maxMessageSize: DATA_MESSAGE_MAX_BYTES,
          }));
          for (const { label, streamId } of PUBLISHER_CHANNELS) {
            const producer = await transport.produceData({ sctpStreamParameters: { streamId, ordered: true }, label });
            session.addChannel(label, await reader.consumeData({ dataProducerId: producer.id }));
          }
        }
      } catch (error) {
        if (error instanceof OfferError) throw error;
        // What mediasoup refuses in the offer's parameters is the offer's fault: a 400, never a 500.
        throw new OfferError(`the WebRTC engine cannot take this offer (${(error as Error).message ?? error})`);
      }
      session.answer = withBitrateHints(
        answerSdp(parsed, transport, (a) => this.#announced.has(a)),
        {
          ...this.options,
          videoBitrateKbps: this.options.videoBitrateKbps + lowerLayersKbps,
        },
      );
      return session;
    } catch (error) {
      await session.close('negotiation failed');
      throw error;
    }
  }

  async acceptLocal(kinds: LocalKinds): Promise<LocalStream> {
    const plant = await this.#ready();
    const handoff = await this.#handoff(plant);
    let local: Awaited<ReturnType<typeof createLocalStream>>;
    try {
      local = await createLocalStream(plant.router, handoff, kinds, this.options);
    } catch (error) {
      handoff.close();
      throw error;
    }
    const { session } = local;
    this.#sessions.add(session);
    session.on('closed', () => {
      this.#sessions.delete(session);
      handoff.close();
    });
    return local;
  }

  /**
   * A stream's hand-off. One that cannot be made (no port left in the worker's range) is the
   * gateway's shortage, not the client's fault: 503, not 400.
   */
  async #handoff(plant: Plant): Promise<RtpHandoff> {
    return createHandoff(this.options.rtpHandoff ?? 'plain', plant.router, this.options.receiveBufferBytes).catch(
      (error: unknown) => {
        throw unavailable(`the media worker cannot take another stream now (${(error as Error).message ?? error})`);
      },
    );
  }

  async view(publisher: IngestSession, offer: string): Promise<ViewSession> {
    const session = [...this.#sessions].find((s) => s === publisher);
    if (!session) throw new OfferError('the stream is not published through this engine');
    return (await this.#ready()).viewing.view(session, offer);
  }

  /** The worker process's id, once it runs. */
  get workerPid(): number | undefined {
    return this.#workerPid;
  }

  /** Ends every session and the worker process. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sessions].map((s) => s.close('gateway shutting down')));
    const plant = await this.#plant?.catch(() => undefined);
    plant?.worker.close();
  }

  /** The worker, started on first use, and started again after it died. */
  #ready(): Promise<Plant> {
    if (this.#closed) return Promise.reject(new Error('the WebRTC engine is closed'));
    this.#plant ??= this.#start();
    const plant = this.#plant;
    plant.catch(() => {
      if (this.#plant === plant) this.#plant = undefined; // the next publish tries again
    });
    return plant;
  }

  async #start(): Promise<Plant> {
    const [min, max] = this.options.portRange;
    // Loaded when first needed: a gateway on werift never loads mediasoup.
    const { createWorker } = await import('mediasoup');
    const worker = await createWorker({ logLevel: 'error', rtcMinPort: min, rtcMaxPort: max, disableLiburing: true });
    this.#workerPid = worker.pid;
    try {
      worker.on('died', (error) => this.#died(worker, error));
      const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
      const server = await worker.createWebRtcServer({
        listenInfos: this.options.addresses.map((ip) => ({
          protocol: 'udp' as const,
          ip,
          portRange: { min, max },
          ...(this.options.receiveBufferBytes ? { recvBufferSize: this.options.receiveBufferBytes } : {}),
          ...(isIPv6(ip) ? { flags: { ipv6Only: true } } : {}),
        })),
      });
      const viewing = new Viewing(worker, router, {
        server,
        connectTimeoutMs: this.options.viewerConnectTimeoutMs ?? this.options.connectTimeoutMs,
        remoteAllowed: (address) => this.#remoteFilter.allows(address),
        announced: (address) => this.#announced.has(address),
        onListenerError: this.options.onListenerError,
      });
      return { worker, router, server, viewing };
    } catch (error) {
      worker.close();
      throw error;
    }
  }

  #died(worker: types.Worker, error: Error): void {
    void this.#plant?.then((plant) => {
      if (plant.worker !== worker) return;
      this.#plant = undefined;
      for (const session of [...this.#sessions]) void session.close(`the media worker process died (${error.message})`);
      this.options.onWorkerDied?.(error);
    });
  }
}
