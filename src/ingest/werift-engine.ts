import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  useNACK,
  usePLI,
  useSdesMid,
  type MediaStreamTrack,
  type RTCRtpTransceiver,
} from 'werift';
import { TypedEmitter } from '../core/events.js';
import { OPUS_CLOCK_RATE, VIDEO_CLOCK_RATE, type VideoCodec } from '../media/codecs.js';
import { RemoteAddressFilter, filterCandidates } from './address-filter.js';
import type { EngineOptions, IngestEngine, IngestSession, IngestSessionEvents, IngestTrack } from './engine.js';
import { checkOffer } from './offer-check.js';
import { OfferError, selectCodecs, withBitrateHints, type OfferedCodec } from './sdp.js';
import type { RtpSink } from '../media/sinks.js';

export interface WeriftEngineOptions extends EngineOptions {
  /** How long ICE gathering may take before the answer is sent with what was gathered. */
  gatherTimeoutMs?: number;
  /** Let the engine resolve `.local` candidates (multicast DNS queries); off: they are dropped. */
  allowMdns?: boolean;
}

export class WeriftEngine implements IngestEngine {
  readonly #remoteFilter: RemoteAddressFilter;
  readonly #announced: ReadonlySet<string>;

  constructor(private readonly options: WeriftEngineOptions) {
    this.#remoteFilter = new RemoteAddressFilter(options.remoteNetworks, options.allowMdns);
    this.#announced = new Set(options.addresses);
  }

  async accept(offer: string): Promise<IngestSession> {
    checkOffer(offer);
    const selection = selectCodecs(
      filterCandidates(offer, (a) => this.#remoteFilter.allows(a)),
      this.options.videoCodecs,
    );
    const pc = new RTCPeerConnection(this.#peerConfig(selection.video?.offered, selection.video?.codec));
    const session = new WeriftSession(pc, selection.video?.codec, selection.audio !== undefined, this.options);
    try {
      // What the engine refuses in the offer itself is the offer's fault: a 400, never a 500.
      try {
        await pc.setRemoteDescription({ type: 'offer', sdp: selection.sdp });
        session.noteTransports();
        session.tracks = pc
          .getTransceivers()
          .flatMap((transceiver) =>
            transceiver.receiver.tracks.map((track) => new WeriftTrack(track, transceiver, selection.video?.codec)),
          );
        const answer = await pc.createAnswer();
        session.noteTransports();
        await pc.setLocalDescription(answer);
        session.noteTransports();
      } catch (error) {
        throw new OfferError(`the WebRTC engine cannot take this offer (${(error as Error).message ?? error})`);
      }
      await waitForGathering(pc, this.options.gatherTimeoutMs ?? 3000);
      if (this.options.receiveBufferBytes) session.setReceiveBuffers(this.options.receiveBufferBytes);
      const local = pc.localDescription?.sdp;
      if (!local) throw new Error('the WebRTC engine produced no answer');
      session.answer = withBitrateHints(
        filterCandidates(local, (a) => this.#announced.has(a)),
        this.options,
      );
      return session;
    } catch (error) {
      await session.close('negotiation failed');
      throw error;
    }
  }

  #peerConfig(
    video: OfferedCodec | undefined,
    codec: VideoCodec | undefined,
  ): ConstructorParameters<typeof RTCPeerConnection>[0] {
    const { addresses } = this.options;
    const v4 = addresses.filter((a) => isIPv4(a));
    const v6 = addresses.filter((a) => isIPv6(a));
    const filter = this.#remoteFilter;
    const announced = this.#announced;
    const videoCodecs =
      video && codec
        ? [
            new RTCRtpCodecParameters({
              mimeType: `video/${codec}`,
              clockRate: VIDEO_CLOCK_RATE,
              rtcpFeedback: [useNACK(), usePLI()],
              parameters:
                codec === 'H264'
                  ? Object.entries(video.fmtp)
                      .map(([k, v]) => `${k}=${v}`)
                      .join(';')
                  : undefined,
            }),
          ]
        : [];
    return {
      iceServers: [],
      // Host addresses come only from configuration: the engine's own interface scan is off.
      iceUseIpv4: false,
      iceUseIpv6: false,
      iceAdditionalHostAddresses: [...addresses],
      // Bind sockets to the configured address itself when there is one per family.
      iceInterfaceAddresses: {
        ...(v4.length === 1 ? { udp4: v4[0] } : {}),
        ...(v6.length === 1 ? { udp6: v6[0] } : {}),
      },
      icePortRange: this.options.portRange,
      iceFilterStunResponse: (_message, address) => filter.allows(address[0]),
      iceFilterCandidatePair: (pair) =>
        announced.has(pair.localCandidate.host) && filter.allows(pair.remoteCandidate.host),
      codecs: {
        video: videoCodecs,
        audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: OPUS_CLOCK_RATE, channels: 2 })],
      },
      // No transport-cc: werift's feedback for it collapses Chromium's bandwidth estimate.
      headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
    };
  }
}

function waitForGathering(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') done();
    });
    function done(): void {
      clearTimeout(timer);
      unSubscribe();
      resolve();
    }
  });
}

class WeriftSession extends TypedEmitter<IngestSessionEvents> implements IngestSession {
  readonly id = randomUUID();
  answer = '';
  tracks: IngestTrack[] = [];
  #closed = false;
  readonly #connectTimer: NodeJS.Timeout | undefined;
  /** Every ICE connection the engine made for this session, including transports it replaced. */
  readonly #connections = new Set<{ state: string; close(): Promise<void> }>();

  constructor(
    private readonly pc: RTCPeerConnection,
    readonly videoCodec: VideoCodec | undefined,
    readonly hasAudio: boolean,
    options: Pick<WeriftEngineOptions, 'onListenerError' | 'connectTimeoutMs'>,
  ) {
    super(options.onListenerError);
    const timeoutMs = options.connectTimeoutMs;
    if (timeoutMs) {
      this.#connectTimer = setTimeout(
        () => void this.close(`ICE and DTLS not done within ${timeoutMs / 1000} s`),
        timeoutMs,
      );
    }
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') {
        clearTimeout(this.#connectTimer);
        this.safeEmit('connected');
      } else if (state === 'failed' || state === 'closed') void this.close(`WebRTC connection ${state}`);
    });
  }

  noteTransports(): void {
    for (const transport of this.pc.iceTransports) this.#connections.add(transport.connection);
  }

  /** Sets the receive buffer of every gathered UDP socket; the kernel may give less (net.core.rmem_max). */
  setReceiveBuffers(bytes: number): void {
    for (const connection of this.#connections) {
      for (const protocol of (connection as unknown as { protocols?: { transport?: { socket?: Socket } }[] })
        .protocols ?? []) {
        try {
          protocol.transport?.socket?.setRecvBufferSize(bytes);
        } catch {
          // Not bound (a TCP candidate, or already closed): nothing to size.
        }
      }
    }
  }

  async close(reason = 'closed by the gateway'): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#connectTimer);
    this.noteTransports();
    const connections = [...this.#connections];
    try {
      await this.pc.close();
    } finally {
      // werift's candidate gathering ends by setting its ICE connection "completed": a close that
      // lands while gathering finishes is undone, and the connection then polls its checks every
      // 20 ms for good. Such a connection is closed again once gathering must be over.
      for (const delayMs of [1000, 6000, 15000]) setTimeout(() => closeLingering(connections), delayMs).unref();
      this.safeEmit('closed', reason);
      this.removeAllListeners();
    }
  }
}

function closeLingering(connections: { state: string; close(): Promise<void> }[]): void {
  for (const connection of connections) if (connection.state !== 'closed') connection.close().catch(() => {});
}

class WeriftTrack implements IngestTrack {
  readonly kind: 'audio' | 'video';
  readonly clockRate: number;
  readonly videoCodec?: VideoCodec;
  nacksSent = 0;

  constructor(
    private readonly track: MediaStreamTrack,
    private readonly transceiver: RTCRtpTransceiver,
    videoCodec: VideoCodec | undefined,
  ) {
    this.kind = track.kind === 'video' ? 'video' : 'audio';
    this.clockRate = this.kind === 'video' ? VIDEO_CLOCK_RATE : OPUS_CLOCK_RATE;
    if (this.kind === 'video') this.videoCodec = videoCodec;
    // werift sends a NACK for packets it finds missing, and tells of each.
    transceiver.receiver.onPacketLost.subscribe((nack) => {
      if (nack.mediaSourceSsrc === track.ssrc) this.nacksSent++;
    });
  }

  deliverTo(input: RtpSink): () => void {
    const { unSubscribe } = this.track.onReceiveRtp.subscribe((rtp) => {
      input.packet({
        sequenceNumber: rtp.header.sequenceNumber,
        timestamp: rtp.header.timestamp,
        marker: rtp.header.marker,
        payload: rtp.payload,
        captureMs: 0,
      });
    });
    return unSubscribe;
  }

  requestKeyframe(): void {
    if (this.kind !== 'video' || this.track.ssrc === undefined) return;
    this.transceiver.receiver.sendRtcpPLI(this.track.ssrc).catch(() => {
      // The transport may be closing; the next request will tell.
    });
  }
}
