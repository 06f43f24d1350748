import t from 'tap';
import { pushAndVerify, waitForBrowserBesideRed, whipPublish } from '../helpers/e2e.js';
import { waitFor } from '../../kit/processes.js';
import { freePort } from '../../kit/rtmp-server.js';
import { useStage } from '../helpers/stage.js';
import { join } from 'node:path';
import { colourLook, loadFixture } from '../../kit/fixture.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');

// A gateway that prefers VP8, so the browser sends VP8 and the push transcodes to H.264.
const stage = useStage([{ webrtc_video_codecs: ['VP8', 'H264'] }]);

t.test('a VP8 publish is transcoded to H.264 with keyframes at most 2 s apart', async (t) => {
  const { gw, nginx, browser } = stage;
  await browser.page.goto(gw.baseUrl + '/health');
  const whip = await whipPublish(browser.page, gw.baseUrl + '/whip/vp8');
  t.equal(whip.status, 201);
  t.match(whip.answer, /a=rtpmap:\d+ VP8\/90000/);
  await waitFor('the WebRTC publish', async () => gw.publishers.get('vp8')?.state === 'publishing', 10000);

  const res = await gw.post('/rest-api/push/startup', { streamName: 'vp8', rtmpUrl: nginx.url() });
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.match(res.body, { transcoding: true, width: 1280, height: 720, state: 'running' });
  await pushAndVerify(t, gw, nginx, browser.page, {
    mediaSessionId: res.body.mediaSessionId,
    rtmpStream: 'rtmp_vp8',
    statsExpression: 'window.pc.getStats()',
    seconds: 8,
  });
});

t.test("a mixer takes a browser's VP8 beside an H.264 stream: each is decoded into its slot", async (t) => {
  const { gw } = stage;
  const red = await SyntheticPublisher.publish(
    loadFixture(FIXTURES, colourLook('#ff0000', '640x480', 440)),
    gw.baseUrl,
    'red',
  );
  t.teardown(() => red.stop());
  await waitFor('the VP8 stream publishing', async () => gw.publishers.get('vp8')?.state === 'publishing', 10000);
  t.equal(
    (await gw.post('/rest-api/mixer/startup', { uri: 'mixer://both', layout: 'side-by-side', width: 640, height: 360 }))
      .status,
    200,
  );
  t.teardown(() => gw.post('/rest-api/mixer/terminate', { uri: 'mixer://both' }));
  for (const stream of ['vp8', 'red'])
    t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://both', remoteStreamName: stream })).status, 200);
  await waitForBrowserBesideRed(gw, 'both');
  t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://both' })).status, 200);
  await waitFor('no ffmpeg left', () => gw.ffmpeg.count === 0);
});

t.test('a destination that refuses the connection answers 500 with the reason, and nothing is left', async (t) => {
  const { gw } = stage;
  const closedPort = await freePort();
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'vp8',
    rtmpUrl: `rtmp://127.0.0.1:${closedPort}/live`,
  });
  t.equal(res.status, 500);
  t.match(res.body, {
    error: 'destination_unreachable',
    message: /push failed to start: could not publish to the destination: connect ECONNREFUSED/,
  });
  t.equal((await gw.post('/rest-api/push/find', { streamName: 'vp8' })).status, 404, 'the failed push is not listed');
  t.equal(gw.ffmpeg.count, 0);
});
