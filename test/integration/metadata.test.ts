import t from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import type { Amf0Value } from '../../src/media/amf0.js';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { testFixture } from '../helpers/synthetic.js';

// onMetaData as an RTMP server receives it, from a real WebRTC publisher (werift over WHIP) at 720p30.

async function firstMessages(
  sendMetadata: boolean,
  request: Record<string, unknown>,
): Promise<{ metadata: Record<string, Amf0Value>[]; order: string[]; body: any }> {
  const receiver = await RtmpReceiver.start();
  const gw = await startGateway({ rtmp_transponder_send_metadata: sendMetadata });
  const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'meta');
  const metadata: Record<string, Amf0Value>[] = [];
  const order: string[] = [];
  receiver.on('metadata', (_p, m) => {
    metadata.push(m);
    order.push('metadata');
  });
  receiver.on('media', (m) => order.push(m.kind));
  try {
    // A keyframe to start from, and a frame rate to report.
    await waitFor(
      'a keyframe and a frame rate',
      async () =>
        gw.publishers.get('meta')?.keyframe &&
        (await gw.post('/rest-api/stream/find', { name: 'meta' })).body[0]?.video?.frameRate > 0,
      15000,
    );
    const res = await gw.post('/rest-api/push/startup', { streamName: 'meta', rtmpUrl: receiver.url(), ...request });
    await waitFor('video at the RTMP server', () => order.filter((k) => k === 'video').length > 20, 10000);
    return { metadata, order, body: res.body };
  } finally {
    await publisher.stop();
    await gw.close();
    await receiver.close();
  }
}

t.test('passthrough: onMetaData with the source size, frame rate and codecs comes before any media', async (t) => {
  const { metadata, order, body } = await firstMessages(true, {});
  t.equal(metadata.length, 1);
  t.match(metadata[0], {
    width: 1280,
    height: 720,
    videocodecid: 7,
    audiocodecid: 10,
    audiosamplerate: 48000,
    stereo: true,
  });
  t.ok(Math.abs(Number(metadata[0]!.framerate) - 30) < 1, `framerate ${Number(metadata[0]!.framerate)}`);
  t.equal(order[0], 'metadata');
  t.match(body, { width: 1280, height: 720, transcoding: false }, 'the response says what is sent');
});

t.test('transcoding: onMetaData and the response give the transcoded size', async (t) => {
  const { metadata, order, body } = await firstMessages(true, { height: 480 });
  t.equal(metadata.length, 1);
  t.match(metadata[0], { width: 854, height: 480, videocodecid: 7, audiocodecid: 10 });
  t.equal(order[0], 'metadata');
  t.match(body, { width: 854, height: 480, transcoding: true });
  t.ok(
    Math.abs(Number(metadata[0]!.framerate) - 30) < 1,
    `framerate ${Number(metadata[0]!.framerate)}: the source's, not ffmpeg's guess`,
  );
});

t.test('transcoding to another frame rate: onMetaData gives the rate sent', async (t) => {
  const { metadata } = await firstMessages(true, { fps: 15 });
  t.equal(metadata.length, 1);
  t.equal(metadata[0]!.framerate, 15);
});

t.test('rtmp_transponder_send_metadata false: no onMetaData', async (t) => {
  const { metadata, order } = await firstMessages(false, {});
  t.same(metadata, []);
  t.equal(order[0], 'video');
});
