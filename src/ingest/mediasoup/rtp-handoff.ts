import { trackSize } from '../../core/tracked.js';
import { createSocket, type Socket } from 'node:dgram';
import type { types } from 'mediasoup';
import type { RtpSink } from '../../media/sinks.js';

/** A publisher's track as the gateway receives it from the worker. */
export interface HandedTrack {
  /** Keyframe requests go through it (mediasoup sends the publisher a PLI). */
  readonly consumer: types.Consumer;
  /** Hands the track's RTP datagrams to `input`; returns the function that stops it. */
  deliverTo(input: RtpSink): () => void;
}

/**
 * How a publisher's RTP leaves the mediasoup worker for the gateway's frame path (one hand-off per
 * stream, so that each socket's receive buffer holds one stream's RTP while the event loop is held):
 * - `direct`: a DirectTransport; each packet comes over the worker's channel (a Unix socket) as a
 *   flatbuffers message, decoded in JavaScript into several objects and a copy of the packet.
 * - `plain`: a PlainTransport sending plain RTP over loopback UDP to one socket of the gateway's,
 *   which tells the tracks apart by SSRC: one Buffer per packet, read by the kernel.
 */
export type HandoffKind = 'direct' | 'plain';

export interface RtpHandoff {
  /**
   * A consumer of the producer's RTP, not retransmitted (nothing on this side asks for
   * retransmissions); of a simulcast producer, layer `spatialLayer` (the top one by default).
   */
  consume(producerId: string, spatialLayer?: number): Promise<HandedTrack>;
  /** The gateway's own receiving port, when the RTP comes over UDP (plain). */
  readonly localPort?: number;
  close(): void;
}

export async function createHandoff(
  kind: HandoffKind,
  router: types.Router,
  receiveBufferBytes?: number,
): Promise<RtpHandoff> {
  return kind === 'plain' ? PlainHandoff.create(router, receiveBufferBytes) : DirectHandoff.create(router);
}

/** Feedback and header extensions that would have the worker estimate the hand-off's bandwidth. */
const BANDWIDTH_FEEDBACK = new Set(['transport-cc', 'goog-remb']);
const BANDWIDTH_EXTENSIONS = new Set([
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
]);

/**
 * The router's capabilities without bandwidth estimation. The gateway sends no feedback over the
 * hand-off: with it, the worker's estimate of the loopback decays, and a simulcast consumer goes
 * down a layer each second it does, to the lowest, whatever the publisher sends.
 */
function handoffCapabilities(router: types.Router): types.RtpCapabilities {
  const { codecs = [], headerExtensions = [] } = router.rtpCapabilities;
  return {
    codecs: codecs.map((codec) => ({
      ...codec,
      rtcpFeedback: (codec.rtcpFeedback ?? []).filter((f) => !BANDWIDTH_FEEDBACK.has(f.type)),
    })),
    headerExtensions: headerExtensions.filter((e) => !BANDWIDTH_EXTENSIONS.has(e.uri)),
  };
}

function consumeOptions(
  router: types.Router,
  producerId: string,
  spatialLayer: number | undefined,
): types.ConsumerOptions {
  const preferred = spatialLayer === undefined ? {} : { preferredLayers: { spatialLayer } };
  return { producerId, rtpCapabilities: handoffCapabilities(router), enableRtx: false, ...preferred };
}

class DirectHandoff implements RtpHandoff {
  private constructor(
    private readonly router: types.Router,
    private readonly transport: types.DirectTransport,
  ) {}

  static async create(router: types.Router): Promise<DirectHandoff> {
    return new DirectHandoff(router, await router.createDirectTransport());
  }

  async consume(producerId: string, spatialLayer?: number): Promise<HandedTrack> {
    const consumer = await this.transport.consume(consumeOptions(this.router, producerId, spatialLayer));
    return {
      consumer,
      deliverTo(input) {
        const onRtp = (buffer: Buffer): void => input.datagram(buffer);
        consumer.on('rtp', onRtp);
        return () => consumer.off('rtp', onRtp);
      },
    };
  }

  close(): void {
    this.transport.close();
  }
}

/** Loopback: the worker and the gateway are on one machine. */
const LOOPBACK = '127.0.0.1';

class PlainHandoff implements RtpHandoff {
  /** Where each consumer's RTP goes, by its SSRC. */
  readonly #inputs = new Map<number, RtpSink[]>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: PlainHandoff): void {
    trackSize('rtp_handoff_inputs', owner, (self) => self.#inputs.size);
  }

  private constructor(
    private readonly router: types.Router,
    private readonly transport: types.PlainTransport,
    private readonly socket: Socket,
  ) {
    PlainHandoff.#trackSizes(this);
    // Only the worker's own address and port are heard: another local process cannot inject media.
    const workerPort = transport.tuple.localPort;
    socket.on('message', (buffer, from) => {
      if (from.port !== workerPort || from.address !== LOOPBACK || buffer.length < 12) return;
      // RTCP shares the port (rtcp-mux): its packet types 200-206 read as payload types 72-78.
      const type = buffer[1]! & 0x7f;
      if (type >= 72 && type <= 78) return;
      const inputs = this.#inputs.get(buffer.readUInt32BE(8));
      if (inputs) for (const input of inputs) input.datagram(buffer);
    });
  }

  static async create(router: types.Router, receiveBufferBytes?: number): Promise<PlainHandoff> {
    const socket = createSocket('udp4');
    // A socket error (none is expected on loopback) must not end the process; the packet is lost.
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, LOOPBACK, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      if (receiveBufferBytes) socket.setRecvBufferSize(receiveBufferBytes);
      // Its worker-side socket takes a port of the worker's share of the range, on loopback only,
      // sized like every media socket there.
      const transport = await router.createPlainTransport({
        listenInfo: {
          protocol: 'udp',
          ip: LOOPBACK,
          ...(receiveBufferBytes ? { recvBufferSize: receiveBufferBytes } : {}),
        },
        rtcpMux: true,
        comedia: false,
      });
      await transport.connect({ ip: LOOPBACK, port: socket.address().port });
      return new PlainHandoff(router, transport, socket);
    } catch (error) {
      socket.close();
      throw error;
    }
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  async consume(producerId: string, spatialLayer?: number): Promise<HandedTrack> {
    const consumer = await this.transport.consume(consumeOptions(this.router, producerId, spatialLayer));
    const ssrc = consumer.rtpParameters.encodings?.[0]?.ssrc;
    if (ssrc === undefined) {
      consumer.close();
      throw new Error('the media worker gave the consumer no SSRC');
    }
    const inputs = this.#inputs;
    consumer.observer.once('close', () => inputs.delete(ssrc));
    return {
      consumer,
      deliverTo(input) {
        inputs.set(ssrc, [...(inputs.get(ssrc) ?? []), input]);
        return () => {
          const left = inputs.get(ssrc)?.filter((i) => i !== input);
          if (left?.length) inputs.set(ssrc, left);
          else inputs.delete(ssrc);
        };
      },
    };
  }

  close(): void {
    this.transport.close();
    this.socket.close();
  }
}
