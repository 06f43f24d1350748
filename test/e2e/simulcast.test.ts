import t from 'tap';
import { whipPublish } from '../helpers/e2e.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';

// Chromium publishing three simulcast layers of H.264 over WHIP (Debian's Chromium encodes each
// with OpenH264: 1280x720, 640x360 and 320x180). The gateway takes them all; a push of the stream
// gets the top layer, passed through.

const stage = useStage();

t.test('a WHIP offer of three simulcast layers is taken; a push passes the top one through', async (t) => {
  await stage.browser.page.goto(stage.gw.baseUrl + '/health');
  const whip = await whipPublish(stage.browser.page, stage.gw.baseUrl + '/whip/layers', true, true);
  t.equal(whip.status, 201, whip.answer);
  t.match(whip.offer, /a=simulcast:send l;m;h/, 'Chromium offered three layers');
  t.match(whip.answer, /a=simulcast:recv l;m;h/, 'the answer receives them');
  t.match(whip.answer, /a=rid:l recv[\s\S]*a=rid:m recv[\s\S]*a=rid:h recv/);
  t.match(whip.answer, /a=extmap:\d+ urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id/);
  await waitFor('the WebRTC publish', async () => stage.gw.publishers.get('layers')?.state === 'publishing', 10_000);
  const layersSent = await waitFor(
    'Chromium sending its three layers',
    async () => {
      const sizes = await stage.browser.page.evaluate(async () => {
        const seen: string[] = [];
        (await (window as any).pc.getStats()).forEach((s: any) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesSent > 0) seen.push(`${s.rid}:${s.frameWidth}x${s.frameHeight}:${s.encoderImplementation}`);
        });
        return seen.sort();
      });
      return sizes.length === 3 ? sizes : undefined;
    },
    15_000,
    200,
  );
  t.comment(`layers sent: ${layersSent.join(', ')}`);

  const started = await stage.gw.post('/rest-api/push/startup', { streamName: 'layers', rtmpUrl: `${stage.nginx.url()}/top`, rtmpTransponderFullUrl: true });
  t.equal(started.status, 200, JSON.stringify(started.body));
  await waitFor('2 s of the push recorded', async () => ((await probe(stage.nginx.recording('top')).catch(() => undefined))?.video.length ?? 0) >= 40, 30_000, 250);
  const { streams } = await probe(stage.nginx.recording('top'));
  t.match(
    streams.find((s) => s.codec_type === 'video'),
    { codec_name: 'h264', width: 1280, height: 720 },
    'the top layer, H.264 at 1280x720',
  );
  t.equal((await stage.gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId })).status, 200);
});
