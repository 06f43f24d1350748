import { join } from 'node:path';
import t from 'tap';
import { colourLook, loadFixture } from '../../kit/fixture.js';
import { waitFor } from '../../kit/processes.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { waitForBrowserBesideRed, whipPublish } from '../helpers/e2e.js';
import { useStage } from '../helpers/stage.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');

// A gateway that prefers VP9, so the browser sends VP9: a mixer takes it beside an H.264 stream.
const stage = useStage([{ webrtc_video_codecs: ['VP9', 'H264'] }]);

t.test(
  "a mixer takes a browser's VP9 beside an H.264 stream: each is decoded into its slot, and the mixer's output is H.264 at nginx-rtmp",
  async (t) => {
    const { gw, nginx, browser } = stage;
    await browser.page.goto(gw.baseUrl + '/health');
    const whip = await whipPublish(browser.page, gw.baseUrl + '/whip/vp9');
    t.equal(whip.status, 201);
    t.match(whip.answer, /a=rtpmap:\d+ VP9\/90000/, 'the browser publishes VP9');
    const red = await SyntheticPublisher.publish(
      loadFixture(FIXTURES, colourLook('#ff0000', '640x480', 440)),
      gw.baseUrl,
      'red',
    );
    t.teardown(() => red.stop());
    await waitFor('the VP9 stream publishing', async () => gw.publishers.get('vp9')?.state === 'publishing', 10000);
    t.equal(gw.publishers.get('vp9')?.videoCodec, 'VP9');

    t.equal(
      (
        await gw.post('/rest-api/mixer/startup', {
          uri: 'mixer://both',
          layout: 'side-by-side',
          width: 640,
          height: 360,
        })
      ).status,
      200,
    );
    t.teardown(() => gw.post('/rest-api/mixer/terminate', { uri: 'mixer://both' }));
    for (const stream of ['vp9', 'red'])
      t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://both', remoteStreamName: stream })).status, 200);
    await waitForBrowserBesideRed(gw, 'both');

    const push = await gw.post('/rest-api/push/startup', {
      streamName: 'both',
      rtmpUrl: `${nginx.url()}/both`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    const [arrived] = await waitFor('the mixer at nginx-rtmp', async () => {
      const streams = await nginx.streams();
      return streams.length === 1 && streams[0]!.width > 0 ? streams : undefined;
    });
    t.match(arrived, { name: 'both', videoCodec: /H264/i, width: 640, height: 360 }, 'H.264 at the size asked');
    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://both' })).status, 200);
    await waitFor('no ffmpeg left', () => gw.ffmpeg.count === 0);
  },
);
