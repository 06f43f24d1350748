import type { types } from 'mediasoup';
import { GatewayError } from '../../core/errors.js';
import { filterCandidates } from '../address-filter.js';
import type { ViewSession } from '../engine.js';
import { OfferError } from '../sdp.js';
import { flavour, viewerCodecs } from './codecs.js';
import { DATA_MESSAGE_MAX_BYTES } from './offer.js';
import type { MediasoupSession } from './session.js';
import { MediasoupViewer, type MediasoupViewerOptions } from './viewer.js';
import { parseViewerOffer, viewerAnswerSdp, type SentTrack } from './viewer-sdp.js';

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

/** What a viewer is made with: the worker's WebRTC server, and the engine's settings for its sessions. */
export interface ViewingOptions extends MediasoupViewerOptions {
  server: types.WebRtcServer;
  /** Whether an address is one the gateway announces (its ICE candidates in the answer). */
  announced(address: string): boolean;
}

/**
 * WHEP viewers of one mediasoup worker's publishers. A viewer is sent from a router whose payload
 * types are the ones it offered (a router per set of them, made when first needed and closed with
 * its last viewer), the publisher's producers piped into it from the publishers' router.
 */
export class Viewing {
  /** The viewers' routers, by the payload types their viewers offered (`viewerCodecs`). */
  readonly #routers = new Map<string, ViewerRouter>();

  constructor(
    private readonly worker: types.Worker,
    /** The publishers' router. */
    private readonly source: types.Router,
    private readonly options: ViewingOptions,
  ) {}

  /** A viewer of `session`'s stream, answered for `offer`. */
  async view(session: MediasoupSession, offer: string): Promise<ViewSession> {
    const parsed = parseViewerOffer(filterCandidates(offer, () => false));
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
    const sender = await this.#join(codecs);
    let transport: types.WebRtcTransport;
    try {
      transport = await sender.router.createWebRtcTransport({
        webRtcServer: this.options.server,
        enableUdp: true,
        enableTcp: false,
        initialAvailableOutgoingBitrate: 1_000_000,
        ...(parsed.data ? { enableSctp: true, maxSctpMessageSize: DATA_MESSAGE_MAX_BYTES } : {}),
      });
    } catch (error) {
      this.#leave(sender);
      throw error;
    }
    const { connectTimeoutMs, remoteAllowed, onListenerError } = this.options;
    const viewer = new MediasoupViewer(transport, { connectTimeoutMs, remoteAllowed, onListenerError });
    const endViewer = (): void => void viewer.close('the stream ended');
    session.on('closed', endViewer);
    viewer.on('closed', () => {
      session.off('closed', endViewer);
      this.#leave(sender);
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
          const piped = await this.#pipe(sender, producer.id).catch(() => undefined);
          if (!piped || !sender.router.canConsume({ producerId: piped.id, rtpCapabilities: parsed.rtpCapabilities }))
            continue;
          // No RTX: its payload type is the router's own choice, which the viewer did not offer. Lost
          // packets are sent again as they were.
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
        (a) => this.options.announced(a),
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
  async #join(codecs: types.RouterRtpCodecCapability[]): Promise<ViewerRouter> {
    const key = JSON.stringify(codecs.map((c) => [c.mimeType, flavour(c), c.preferredPayloadType]));
    let entry = this.#routers.get(key);
    if (!entry) {
      let router: types.Router;
      try {
        router = await this.worker.createRouter({ mediaCodecs: codecs });
      } catch (error) {
        throw new OfferError(`the offer's payload types cannot be used (${(error as Error).message})`);
      }
      entry = this.#routers.get(key) ?? { router, piped: new Map(), viewers: 0 };
      if (entry.router !== router) router.close(); // made meanwhile by another viewer
      this.#routers.set(key, entry);
    }
    entry.viewers++;
    return entry;
  }

  /** A viewer of `sender` is gone: its last one closes it, and with it the pipes into it. */
  #leave(sender: ViewerRouter): void {
    if (--sender.viewers > 0) return;
    for (const [key, entry] of this.#routers) if (entry === sender) this.#routers.delete(key);
    sender.router.close();
  }

  /**
   * The publisher's producer `producerId` carried into a viewers' router, once per router: a pipe
   * transport pair on loopback inside the worker process (mediasoup's own `pipeToRouter` keeps the
   * producer's id, which a router of the same worker cannot take). It ends with the producer.
   */
  #pipe(sender: ViewerRouter, producerId: string): Promise<types.Producer> {
    let piping = sender.piped.get(producerId);
    if (piping) return piping;
    sender.pipe ??= (async () => {
      const listenInfo = { protocol: 'udp' as const, ip: '127.0.0.1' };
      const [from, into] = await Promise.all([
        this.source.createPipeTransport({ listenInfo }),
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
}
