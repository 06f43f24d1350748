import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import type { ListenerErrorHandler } from '../../core/events.js';
import type { MediaKind } from '../../media/codecs.js';
import type { LocalKinds, LocalStream, LocalTarget } from '../engine.js';
import type { RtpHandoff } from './rtp-handoff.js';
import { MediasoupSession } from './session.js';

/** Loopback: the encoder runs on this machine. */
const LOOPBACK = '127.0.0.1';

/** The codec each kind of a local stream is sent as: H.264 any decoder takes, and Opus. */
const CODECS: Record<MediaKind, types.RtpCodecParameters> = {
  video: {
    mimeType: 'video/H264',
    payloadType: 96,
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
  audio: { mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 },
};

/**
 * A stream made in the gateway, in mediasoup like a publisher's: one plain transport per kind on
 * loopback, learning the encoder's address from its first packet, a producer on each, and the
 * producers consumed through the stream's hand-off as a publisher's are. So its output is pushed,
 * recorded and watched (WHEP) as any stream is.
 */
export async function createLocalStream(
  router: types.Router,
  handoff: RtpHandoff,
  kinds: LocalKinds,
  options: { receiveBufferBytes?: number; onListenerError?: ListenerErrorHandler },
): Promise<{ session: MediasoupSession } & LocalStream> {
  const wanted = (['video', 'audio'] as const).filter((kind) => kinds[kind]);
  const transports: types.PlainTransport[] = [];
  try {
    for (let i = 0; i < wanted.length; i++) {
      transports.push(
        await router.createPlainTransport({
          listenInfo: {
            protocol: 'udp',
            ip: LOOPBACK,
            ...(options.receiveBufferBytes ? { recvBufferSize: options.receiveBufferBytes } : {}),
          },
          // RTCP on a port of its own: the encoder sends it from another socket than its RTP, and
          // a transport that learns the sender's address would keep only the first one's.
          rtcpMux: false,
          comedia: true,
        }),
      );
    }
  } catch (error) {
    for (const transport of transports) transport.close();
    throw error;
  }
  const session = MediasoupSession.local(transports, {
    videoCodec: kinds.video ? 'H264' : undefined,
    hasAudio: kinds.audio !== undefined,
    onListenerError: options.onListenerError,
  });
  const targets: LocalTarget[] = [];
  try {
    for (const [i, kind] of wanted.entries()) {
      const transport = transports[i]!;
      const codec = CODECS[kind];
      const ssrc = randomInt(1, 2 ** 31);
      const producer = await transport.produce({ kind, rtpParameters: { codecs: [codec], encodings: [{ ssrc }] } });
      session.addTrack(kind, producer, await handoff.consume(producer.id), kinds[kind]!.startMs);
      targets.push({
        kind,
        port: transport.tuple.localPort,
        rtcpPort: transport.rtcpTuple!.localPort,
        payloadType: codec.payloadType,
        ssrc,
      });
    }
  } catch (error) {
    await session.close('the local stream could not be set up');
    throw error;
  }
  return { session, targets };
}
