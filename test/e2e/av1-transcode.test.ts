import t from 'tap';
import { pushAndVerify, whipPublish } from '../helpers/e2e.js';
import { waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';

// A gateway that prefers AV1, so Chromium sends AV1 (its own encoder, over WHIP): the frames are read
// from AV1's RTP payload format, decoded for a snapshot, and transcoded to H.264 for an RTMP server.
const stage = useStage([{ webrtc_video_codecs: ['AV1', 'H264'] }]);

t.test('an AV1 publish from Chromium: its snapshot decodes, its push is transcoded to H.264', async (t) => {
  const { gw, nginx, browser } = stage;
  await browser.page.goto(gw.baseUrl + '/health');
  const whip = await whipPublish(browser.page, gw.baseUrl + '/whip/av1');
  t.equal(whip.status, 201);
  t.match(whip.answer, /a=rtpmap:\d+ AV1\/90000/, 'the gateway answers AV1');
  await waitFor('the WebRTC publish', async () => gw.publishers.get('av1')?.state === 'publishing', 10000);
  const publisher = gw.publishers.get('av1')!;
  t.equal(publisher.videoCodec, 'AV1');
  await waitFor('an AV1 keyframe', () => publisher.keyframe !== undefined, 15_000);
  t.same(publisher.keyframe!.size, { width: 1280, height: 720 }, "the keyframe's sequence header read");

  const snapshot = await fetch(`${gw.baseUrl}/rest-api/stream/snapshot`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'av1' }),
  });
  t.equal(snapshot.status, 200, 'the AV1 keyframe decodes into a snapshot');
  const jpeg = Buffer.from(await snapshot.arrayBuffer());
  t.ok(jpeg[0] === 0xff && jpeg[1] === 0xd8, 'a JPEG');

  const res = await gw.post('/rest-api/push/startup', { streamName: 'av1', rtmpUrl: nginx.url() });
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.match(res.body, { transcoding: true, state: 'running' });
  await pushAndVerify(t, gw, nginx, browser.page, {
    mediaSessionId: res.body.mediaSessionId,
    rtmpStream: 'rtmp_av1',
    statsExpression: 'window.pc.getStats()',
    seconds: 8,
  });
});
