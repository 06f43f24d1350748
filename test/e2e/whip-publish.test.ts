import t from 'tap';
import { candidateAddresses } from '../helpers/sdp-lines.js';
import { pushAndVerify, whipPublish } from '../helpers/e2e.js';
import { pidsMatching, waitFor } from '../../kit/processes.js';
import { probe } from '../../kit/probe.js';
import { readCaptions } from '../../kit/captions.js';
import { useStage } from '../helpers/stage.js';

/** Everything the gateway logged, at debug level (which includes ffmpeg's own output). */
const logLines: string[] = [];
const stage = useStage([{ log_level: 'debug' }, logLines]);

t.test('WHIP publish, then /push/startup republishes to RTMP; find and terminate manage it', async (t) => {
  await stage.browser.page.goto(stage.gw.baseUrl + '/health');
  const whip = await whipPublish(stage.browser.page, stage.gw.baseUrl + '/whip/whip1');
  t.equal(whip.status, 201);
  t.match(whip.contentType, /application\/sdp/);
  t.match(whip.location, /^\/whip\/whip1\/[0-9a-f-]{36}$/);
  t.same(
    [...new Set(candidateAddresses(whip.answer))],
    ['127.0.0.1'],
    'the answer announces only the configured address',
  );
  t.match(whip.answer, /a=rtpmap:\d+ H264\/90000/, 'H.264 was chosen');
  t.notMatch(whip.answer, /VP8/, 'one video codec');
  // werift's answer leaves transport-wide congestion control out; mediasoup estimates with it.
  if (stage.gw.config.webrtc_engine === 'werift') t.notMatch(whip.answer, /transport-cc/);
  else t.match(whip.answer, /a=rtcp-fb:\d+ transport-cc/);

  const connectedAt = Date.now();
  await waitFor('the WebRTC publish', async () => stage.gw.publishers.get('whip1')?.state === 'publishing', 10000);
  const again = await stage.browser.page.evaluate(
    async ([url, offer]) =>
      (await fetch(url!, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer })).status,
    [stage.gw.baseUrl + '/whip/whip1', whip.offer],
  );
  t.equal(again, 409, 'a second publish of a name that is publishing is refused');
  const target = await waitFor(
    'Chromium to reach the configured video bitrate',
    async () => {
      const kbps = await stage.browser.page.evaluate(async () => {
        let bps = 0;
        (await (window as any).pc.getStats()).forEach((s: any) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video') bps = s.targetBitrate ?? 0;
        });
        return bps / 1000;
      });
      return kbps >= 0.9 * stage.gw.config.webrtc_video_bitrate_kbps ? kbps : false;
    },
    3000,
    100,
  );
  t.comment(`target bitrate ${Math.round(target)} kbit/s after ${Date.now() - connectedAt} ms`);

  const url = stage.nginx.url();
  const started = Date.now();
  const res = await stage.gw.post('/rest-api/push/startup', { streamName: 'whip1', rtmpUrl: url });
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.comment(`/push/startup answered in ${Date.now() - started} ms`);
  t.match(res.body, {
    streamName: 'rtmp_whip1',
    rtmpUrl: url,
    width: 1280,
    height: 720,
    muted: false,
    soundEnabled: false,
    options: {},
    state: 'running',
  });
  t.type(res.body.mediaSessionId, 'string');
  await waitFor(
    'video at the RTMP server',
    async () => (await stage.nginx.streams()).some((s) => s.name === 'rtmp_whip1' && s.width > 0),
    10000,
    10,
  );
  t.comment(`/push/startup to video at the RTMP server: ${Date.now() - started} ms`);

  const dup = await stage.gw.post('/rest-api/push/startup', { streamName: 'whip1', rtmpUrl: url });
  t.equal(dup.status, 409, 'a second push to the same rtmpUrl is refused');
  const byUrl = await stage.gw.post('/rest-api/push/find', { rtmpUrl: url });
  t.equal(byUrl.status, 200);
  t.equal(byUrl.body.length, 1);
  t.equal((await stage.gw.post('/rest-api/push/find', { streamName: 'whip1', rtmpUrl: url + '/other' })).status, 404);

  await pushAndVerify(t, stage.gw, stage.nginx, stage.browser.page, {
    mediaSessionId: res.body.mediaSessionId,
    rtmpStream: 'rtmp_whip1',
    statsExpression: 'window.pc.getStats()',
    seconds: 8,
  });

  const deleted = await stage.browser.page.evaluate(
    async (u) => (await fetch(u, { method: 'DELETE' })).status,
    stage.gw.baseUrl + whip.location,
  );
  t.equal(deleted, 200, 'DELETE on the WHIP resource ends the publish');
  t.equal(stage.gw.publishers.all().length, 0);
  t.equal(
    (await stage.gw.post('/rest-api/push/startup', { streamName: 'whip1', rtmpUrl: url })).status,
    404,
    'startup after the publish ended is 404',
  );
});

t.test('a stream key given in full-URL mode never shows in listings', async (t) => {
  await stage.browser.page.goto(stage.gw.baseUrl + '/health');
  const whip = await whipPublish(stage.browser.page, stage.gw.baseUrl + '/whip/whip2');
  t.equal(whip.status, 201);
  const res = await stage.gw.post('/rest-api/push/startup', {
    streamName: 'whip2',
    rtmpUrl: `${stage.nginx.url()}/key-4f9a-secret`,
    rtmpTransponderFullUrl: true,
    rtmpFlashVersion: 'FMLE/3.0 (compatible; Test/2)', // nginx-rtmp keeps 31 characters of it
  });
  t.equal(res.status, 200, JSON.stringify(res.body));
  const keyed = await waitFor(
    'the keyed stream at the RTMP server',
    async () => (await stage.nginx.streams()).find((s) => s.name === 'key-4f9a-secret'),
    10000,
  );
  t.equal(keyed.flashver, 'FMLE/3.0 (compatible; Test/2)', "the request's flashVer reached the RTMP server");
  const listings = JSON.stringify([
    (await stage.gw.post('/rest-api/push/find_all')).body,
    (await stage.gw.post('/rest-api/push/find', { streamName: 'whip2' })).body,
    res.body,
  ]);
  t.notMatch(listings, /key-4f9a-secret/);
  t.match(res.body, { streamName: '***', rtmpUrl: `${stage.nginx.url().replace(/\/live$/, '')}/live/***` });
  const metrics = await (await fetch(stage.gw.baseUrl + '/metrics')).text();
  t.notMatch(metrics, /key-4f9a-secret/);
  t.same(await pidsMatching('key-4f9a-secret'), [], 'no process has the key in its command line');
  t.match(metrics, /gateway_transponders\{state="running"\} 1/);
  await stage.gw.post('/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId });
  const log = logLines.join('');
  t.match(
    log,
    /"destination":"rtmp:\/\/127\.0\.0\.1:\d+\/live\/\*\*\*".*"msg":"publishing to the destination"/,
    'the destination reached the log, redacted',
  );
  t.notMatch(log, /key-4f9a-secret/, 'the key is in no log line');
});

t.test(
  "captions on a WHIP client's own data channel: in the push's video, read back by ffmpeg",
  { skip: process.env.GATEWAY_WEBRTC_ENGINE === 'werift' && 'werift takes no data channel' },
  async (t) => {
    await stage.browser.page.goto(stage.gw.baseUrl + '/health');
    const whip = await whipPublish(stage.browser.page, stage.gw.baseUrl + '/whip/whip3', true, false, true);
    t.equal(whip.status, 201);
    t.match(whip.answer, /m=application 9 UDP\/DTLS\/SCTP webrtc-datachannel\r\n/, 'the data channel answered');
    const res = await stage.gw.post('/rest-api/push/startup', {
      streamName: 'whip3',
      rtmpUrl: `${stage.nginx.url()}/whip3`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(res.status, 200, JSON.stringify(res.body));
    const frames = async (): Promise<number> =>
      (await probe(stage.nginx.recording('whip3')).catch(() => undefined))?.video.length ?? 0;
    await waitFor('1 s recorded', async () => (await frames()) >= 20, 20000, 250);
    await waitFor(
      'the channel open',
      () => stage.browser.page.evaluate(() => (window as any).captions.readyState === 'open'),
      10000,
    );
    await stage.browser.page.evaluate(() => {
      const channel = (window as any).captions as RTCDataChannel;
      channel.send('From a WHIP client.');
      channel.send(JSON.stringify({ text: 'Its second caption.', final: true }));
      channel.send('The last one.');
    });
    const due = (await frames()) + 100;
    await waitFor('5 s more recorded', async () => (await frames()) >= due, 30000, 250);
    const shown = (await readCaptions(stage.nginx.recording('whip3'))).map((cue) => cue.text).join(' | ');
    for (const text of ['From a WHIP client.', 'Its second caption.'])
      t.ok(shown.includes(text), `"${text}" read back (${shown})`);
    await stage.gw.post('/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId });
  },
);
