import { createSocket, type Socket } from 'node:dgram';
import { createWorker, type types } from 'mediasoup';
import t, { type Test } from 'tap';
import { waitFor } from '../../kit/processes.js';
import { createHandoff, type HandoffKind } from '../../src/ingest/mediasoup/rtp-handoff.js';
import { RtpReceiver } from '../../src/media/rtp.js';
import type { MediaPacket } from '../../src/media/sinks.js';

// How a publisher's RTP leaves the mediasoup worker for the gateway, on a real worker: a producer
// fed plain RTP from a socket of the test's, consumed through each hand-off. Every packet arrives
// whole and in order; over UDP (plain), a packet sent to the gateway's port from any other socket
// is not taken, even with the right SSRC.

const PRODUCER_SSRC = 0x1111;
const OPUS_PT = 100;

function rtp(sequenceNumber: number, ssrc: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = OPUS_PT;
  header.writeUInt16BE(sequenceNumber, 2);
  header.writeUInt32BE(sequenceNumber * 960, 4);
  header.writeUInt32BE(ssrc, 8);
  return Buffer.concat([header, payload]);
}

async function boundSocket(t: Test): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => socket.close());
  return socket;
}

const send = (socket: Socket, packet: Buffer, port: number): Promise<void> =>
  new Promise((resolve, reject) =>
    socket.send(packet, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
  );

for (const kind of ['plain', 'direct'] as HandoffKind[]) {
  t.test(
    `${kind}: every packet arrives whole and in order${kind === 'plain' ? '; another socket is not heard' : ''}`,
    async (t) => {
      const worker = await createWorker({
        logLevel: 'error',
        rtcMinPort: 62000,
        rtcMaxPort: 62099,
        disableLiburing: true,
      });
      t.teardown(() => worker.close());
      const router = await worker.createRouter({
        mediaCodecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }],
      });
      const ingress = await router.createPlainTransport({
        listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
        rtcpMux: true,
        comedia: true,
      });
      const producer = await ingress.produce({
        kind: 'audio',
        rtpParameters: {
          codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2 }],
          encodings: [{ ssrc: PRODUCER_SSRC }],
        },
      });
      const handoff = await createHandoff(kind, router, 1024 * 1024);
      const track = await handoff.consume(producer.id);
      const received: MediaPacket[] = [];
      const unsubscribe = track.deliverTo(new RtpReceiver(48000, { push: (packet) => void received.push(packet) }));

      const publisher = await boundSocket(t);
      const sent: Buffer[] = [];
      for (let i = 0; i < 20; i++) {
        const payload = Buffer.from(`opus frame ${i} `.repeat(8));
        sent.push(payload);
        await send(publisher, rtp(1000 + i, PRODUCER_SSRC, payload), ingress.tuple.localPort);
      }
      await waitFor('20 packets through the hand-off', () => received.length >= 20, 10_000, 10);
      t.same(
        received.map((p) => p.payload.toString()),
        sent.map((p) => p.toString()),
        'the payloads, whole and in order',
      );
      const first = received[0]!.sequenceNumber;
      t.ok(
        received.every((p, i) => p.sequenceNumber === ((first + i) & 0xffff)),
        'consecutive sequence numbers',
      );

      if (kind === 'plain') {
        const port = handoff.localPort!;
        t.ok(port > 0, `the gateway receives on 127.0.0.1:${port}`);
        const ssrc = (track.consumer as types.Consumer).rtpParameters.encodings![0]!.ssrc!;
        const intruder = await boundSocket(t);
        const forged = Buffer.from('forged media');
        // Forged packets, then genuine ones through the worker: once the genuine have come, the forged would have too.
        for (let i = 0; i < 5; i++) await send(intruder, rtp(5000 + i, ssrc, forged), port);
        for (let i = 20; i < 25; i++)
          await send(publisher, rtp(1000 + i, PRODUCER_SSRC, Buffer.from(`opus frame ${i}`)), ingress.tuple.localPort);
        await waitFor('the genuine packets after the forged ones', () => received.length >= 25, 10_000, 10);
        t.notOk(
          received.some((p) => p.payload.equals(forged)),
          'no packet from another socket was taken',
        );
        t.equal(received.length, 25, 'the 25 genuine packets, no more');
      }

      unsubscribe();
      const later: MediaPacket[] = [];
      track.deliverTo(new RtpReceiver(48000, { push: (packet) => void later.push(packet) }));
      await send(publisher, rtp(1100, PRODUCER_SSRC, Buffer.from('after unsubscribing')), ingress.tuple.localPort);
      await waitFor('the packet at the listener still subscribed', () => later.length >= 1, 10_000, 10);
      t.notOk(
        received.some((p) => p.payload.toString() === 'after unsubscribing'),
        'nothing reaches a listener that unsubscribed',
      );
      handoff.close();
      t.ok(track.consumer.closed, 'closing the hand-off closes its consumers');
    },
  );
}
