import { trackSize } from '../../core/tracked.js';
import type { types } from 'mediasoup';
import { isIPv6 } from 'node:net';
import { GatewayError, unavailable } from '../../core/errors.js';
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
import { MediasoupViewer } from './viewer.js';
import { flavour, MEDIA_CODECS, viewerCodecs } from './codecs.js';
import { parseViewerOffer, viewerAnswerSdp, type SentTrack } from './viewer-sdp.js';

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
  /** Routers that send to viewers, by the payload types their viewers offered (`viewerCodecs`). */
  viewerRouters: Map<string, ViewerRouter>;
  /** Where the publishers' data channels are read (made at the first). */
  channels?: Promise<types.DirectTransport>;
}

/** A router whose payload types are its viewers', the publishers' producers piped into it as needed. */
interface ViewerRouter {
  router: types.Router;
  /** The pipe from the publishers' router into this one (two pipe transports on loopback). */
  pipe?: Promise<{ from: types.PipeTransport; into: types.PipeTransport }>;
  /** The producers here, by the id of the publisher's producer they carry. */
  piped: Map<string, Promise<types.Producer>>;
  viewers: number;
  /** Where the gateway writes to its viewers' data channels (made at the first). */
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
    const parsed = parseViewerOffer(filterCandidates(offer, () => false));
    const session = [...this.#sessions].find((s) => s === publisher);
    if (!session) throw new OfferError('the stream is not published through this engine');
    const produced = (['audio', 'video'] as const).flatMap(
      (kind) => session.producer(kind)?.rtpParameters.codecs.slice(0, 1) ?? [],
    );
    const codecs = viewerCodecs(parsed.rtpCapabilities, produced);
    // A viewer that asks for video it cannot decode is told so (406), rather than answered with
    // its video line refused and given the audio alone.
    const receives = (kind: 'audio' | 'video'): string[] => [
      ...new Set(
        parsed.rtpCapabilities
          .codecs!.filter(
            (c) => c.kind === kind && !/\/(rtx|red|ulpfec|flexfec-03|CN|telephone-event)$/i.test(c.mimeType),
          )
          .map((c) => c.mimeType.split('/')[1]!),
      ),
    ];
    const asksVideo = parsed.media.some((m) => m.kind === 'video');
    const noCodec = (): GatewayError => {
      const wanted = asksVideo && session.videoCodec ? 'video' : 'audio';
      const streamCodec = wanted === 'video' ? session.videoCodec : 'Opus';
      return new GatewayError(
        'not_acceptable',
        `offer: the stream's ${wanted} is ${streamCodec}, ` +
          `and the offer receives ${wanted} as ${receives(wanted).join(', ') || 'nothing'} only` +
          (streamCodec === 'H264' ? ' (Firefox decodes H.264 only with its OpenH264 plugin)' : ''),
        'offer',
      );
    };
    const videoRefused = asksVideo && session.producer('video') && !codecs.some((c) => c.kind === 'video');
    if (codecs.length === 0 || videoRefused) throw noCodec();
    const plant = await this.#ready();
    const sender = await this.#joinViewerRouter(plant, codecs);
    let transport: types.WebRtcTransport;
    try {
      transport = await sender.router.createWebRtcTransport({
        webRtcServer: plant.server,
        enableUdp: true,
        enableTcp: false,
        initialAvailableOutgoingBitrate: 1_000_000,
        ...(parsed.data ? { enableSctp: true, maxSctpMessageSize: DATA_MESSAGE_MAX_BYTES } : {}),
      });
    } catch (error) {
      this.#leaveViewerRouter(plant, sender);
      throw error;
    }
    const viewer = new MediasoupViewer(transport, {
      connectTimeoutMs: this.options.viewerConnectTimeoutMs ?? this.options.connectTimeoutMs,
      remoteAllowed: (address) => this.#remoteFilter.allows(address),
      onListenerError: this.options.onListenerError,
    });
    const endViewer = (): void => void viewer.close('the stream ended');
    session.on('closed', endViewer);
    viewer.on('closed', () => {
      session.off('closed', endViewer);
      this.#leaveViewerRouter(plant, sender);
    });
    try {
      const tracks = new Map<string, SentTrack>();
      try {
        await transport.connect({ dtlsParameters: { role: parsed.remoteRole, fingerprints: parsed.fingerprints } });
        for (const media of parsed.media) {
          const producer = session.producer(media.kind);
          // One line per kind is sent: a second video line of the offer is refused.
          if (!producer || [...tracks.values()].some((t) => t.kind === media.kind)) continue;
          // A track whose codec the viewer cannot receive is not piped: its media line is refused.
          const piped = await this.#pipe(plant, sender, producer.id).catch(() => undefined);
          if (!piped || !sender.router.canConsume({ producerId: piped.id, rtpCapabilities: parsed.rtpCapabilities }))
            continue;
          // No RTX: its payload type is the router's own choice, which the viewer did not offer. Lost packets are sent again as they were.
          const consumer = await transport.consume({
            producerId: piped.id,
            rtpCapabilities: parsed.rtpCapabilities,
            paused: true,
            mid: media.mid,
            enableRtx: false,
          });
          viewer.add(consumer);
          tracks.set(media.mid, { kind: media.kind, rtpParameters: consumer.rtpParameters });
        }
        // The viewer's data channel, negotiated with id 0 as a publisher's is: the first the transport sends on.
        if (parsed.data) {
          const writer = await (sender.channels ??= sender.router.createDirectTransport({
            maxMessageSize: DATA_MESSAGE_MAX_BYTES,
          }));
          const producer = await writer.produceData({ label: 'captions' });
          viewer.addChannel('captions', producer);
          const consumer = await transport.consumeData({ dataProducerId: producer.id });
          const streamId = consumer.sctpStreamParameters?.streamId;
          if (streamId !== 0) throw new Error(`the data channel got SCTP stream ${streamId}, not 0`);
        }
      } catch (error) {
        throw new OfferError(`the WebRTC engine cannot take this offer (${(error as Error).message ?? error})`);
      }
      if (tracks.size === 0) throw noCodec();
      viewer.answer = viewerAnswerSdp(
        parsed,
        tracks,
        transport,
        (a) => this.#announced.has(a),
        'gateway',
        parsed.data !== undefined,
      );
      return viewer;
    } catch (error) {
      await viewer.close('negotiation failed');
      throw error;
    }
  }

  /**
   * A place in the router for viewers that offered `codecs`' payload types, made when first needed;
   * counted at once, so that a router whose last viewer leaves meanwhile is not closed under this one.
   */
  async #joinViewerRouter(plant: Plant, codecs: types.RouterRtpCodecCapability[]): Promise<ViewerRouter> {
    const key = JSON.stringify(codecs.map((c) => [c.mimeType, flavour(c), c.preferredPayloadType]));
    let entry = plant.viewerRouters.get(key);
    if (!entry) {
      let router: types.Router;
      try {
        router = await plant.worker.createRouter({ mediaCodecs: codecs });
      } catch (error) {
        throw new OfferError(`the offer's payload types cannot be used (${(error as Error).message})`);
      }
      entry = plant.viewerRouters.get(key) ?? { router, piped: new Map(), viewers: 0 };
      if (entry.router !== router) router.close(); // made meanwhile by another viewer
      plant.viewerRouters.set(key, entry);
    }
    entry.viewers++;
    return entry;
  }

  /** A viewer of `sender` is gone: its last one closes it, and with it the pipes into it. */
  #leaveViewerRouter(plant: Plant, sender: ViewerRouter): void {
    if (--sender.viewers > 0) return;
    for (const [key, entry] of plant.viewerRouters) if (entry === sender) plant.viewerRouters.delete(key);
    sender.router.close();
  }

  /**
   * The publisher's producer `producerId` carried into a viewers' router, once per router: a pipe
   * transport pair on loopback inside the worker process (mediasoup's own `pipeToRouter` keeps the
   * producer's id, which a router of the same worker cannot take). It ends with the producer.
   */
  #pipe(plant: Plant, sender: ViewerRouter, producerId: string): Promise<types.Producer> {
    let piping = sender.piped.get(producerId);
    if (piping) return piping;
    sender.pipe ??= (async () => {
      const listenInfo = { protocol: 'udp' as const, ip: '127.0.0.1' };
      const [from, into] = await Promise.all([
        plant.router.createPipeTransport({ listenInfo }),
        sender.router.createPipeTransport({ listenInfo }),
      ]);
      await Promise.all([
        from.connect({ ip: into.tuple.localAddress, port: into.tuple.localPort }),
        into.connect({ ip: from.tuple.localAddress, port: from.tuple.localPort }),
      ]);
      // The far one closes with the viewers' router; this one must be closed with it.
      sender.router.observer.once('close', () => from.close());
      return { from, into };
    })();
    piping = (async () => {
      const { from, into } = await sender.pipe!;
      const consumer = await from.consume({ producerId });
      const producer = await into.produce({
        kind: consumer.kind,
        rtpParameters: consumer.rtpParameters,
        paused: consumer.producerPaused,
      });
      consumer.observer.once('close', () => {
        producer.close();
        sender.piped.delete(producerId);
      });
      return producer;
    })();
    sender.piped.set(producerId, piping);
    piping.catch(() => sender.piped.delete(producerId));
    return piping;
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
      return { worker, router, server, viewerRouters: new Map() };
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
