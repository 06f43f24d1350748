import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { av1Ivf, decodeAv1, readEnhancedFlv } from '../../kit/enhanced-flv.js';
import { NodeMediaServer } from '../../kit/node-media-server.js';
import { waitFor } from '../../kit/processes.js';
import { pushAndVerify, whipPublish } from '../helpers/e2e.js';
import { useStage } from '../helpers/stage.js';

// Chromium's AV1 (its own encoder, over WHIP) passed through untouched to an Enhanced RTMP receiver
// not written here (node-media-server 4, which records what it gets), and the same stream transcoded
// to H.264 for nginx-rtmp at the same time. What arrived is taken out of the FLV into IVF and
// decoded by Debian's ffmpeg (libdav1d): every frame, at the published size, from a keyframe on.

const stage = useStage([{ webrtc_video_codecs: ['AV1', 'H264'] }]);
let nms: NodeMediaServer;
t.before(async () => {
  nms = await NodeMediaServer.start();
});
t.teardown(() => nms?.stop());

const ARTIFACTS = join(process.cwd(), '.test-output');

/** Checks one FLV file node-media-server recorded of a passed-through AV1 push; the frames it holds. */
async function checkReceived(t: Test, file: string, name: string): Promise<number> {
  const flv = await readEnhancedFlv(file);
  t.match(
    flv.metadata,
    { videocodecid: 0x61763031, width: 1280, height: 720, audiocodecid: 10 },
    `${name}: onMetaData`,
  );
  t.equal(flv.legacyVideo, 0, `${name}: no video in FLV's own header`);
  t.ok(flv.audio > 0, `${name}: AAC beside it (${flv.audio} tags)`);
  t.same(
    flv.video.slice(0, 2).map((tag) => [tag.fourCc, tag.packetType, tag.key]),
    [
      ['av01', 0, true],
      ['av01', 1, true],
    ],
    `${name}: a SequenceStart, then a keyframe`,
  );
  t.equal(flv.video[0]!.data[0], 0x81, `${name}: the SequenceStart carries an av1C (marker and version 1)`);
  const frames = flv.video.filter((tag) => tag.packetType === 1);
  const steps = frames.slice(1).map((tag, i) => tag.timestamp - frames[i]!.timestamp);
  t.ok(
    steps.every((step) => step > 0 && step <= 250),
    `${name}: timestamps increase, none more than 250 ms apart (largest ${Math.max(...steps)} ms)`,
  );
  const decoded = await decodeAv1(av1Ivf(flv.video), join(ARTIFACTS, `${name}.ivf`));
  t.equal(decoded.length, frames.length, `${name}: every one of ${frames.length} frames decodes`);
  t.ok(decoded[0]?.key, `${name}: the first is a keyframe`);
  t.same(
    decoded.filter((f) => f.width !== 1280 || f.height !== 720),
    [],
    `${name}: every frame at the published 1280x720`,
  );
  return frames.length;
}

t.test('an AV1 publish goes to an Enhanced RTMP receiver untouched and to nginx-rtmp as H.264, at once', async (t) => {
  const { gw, nginx, browser } = stage;
  await mkdir(ARTIFACTS, { recursive: true });
  await browser.page.goto(gw.baseUrl + '/health');
  const whip = await whipPublish(browser.page, gw.baseUrl + '/whip/av1');
  t.equal(whip.status, 201);
  await waitFor('the WebRTC publish', async () => gw.publishers.get('av1')?.state === 'publishing', 10000);
  t.equal(gw.publishers.get('av1')!.videoCodec, 'AV1');

  const passed = await gw.post('/rest-api/push/startup', {
    streamName: 'av1',
    rtmpUrl: nms.url('passed'),
    rtmpTransponderFullUrl: true,
    platform: 'youtube',
  });
  if (!t.equal(passed.status, 200, JSON.stringify(passed.body))) t.comment(nms.log);
  t.match(
    passed.body,
    { transcoding: false, videoCodec: 'AV1', state: 'running' },
    'YouTube takes AV1: passed through',
  );
  const transcoded = await gw.post('/rest-api/push/startup', { streamName: 'av1', rtmpUrl: nginx.url() });
  t.equal(transcoded.status, 200, JSON.stringify(transcoded.body));
  t.match(transcoded.body, { transcoding: true, videoCodec: 'H264' }, 'an RTMP server of its own: H.264');

  // Until the passed-through push has sent a few seconds, while the transcoded one runs too.
  const push = gw.pushService.get(passed.body.mediaSessionId);
  await waitFor('150 AV1 frames sent', () => push.writer.frames >= 150, 30_000);
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: passed.body.mediaSessionId })).status, 200);
  let file = '';
  await waitFor('node-media-server to finish its recording', async () => {
    [file = ''] = await nms.recordings('passed');
    return file !== '' && nms.publishEnded('passed');
  });
  const frames = await checkReceived(t, file, 'av1-passed');
  t.ok(frames >= 140, `${frames} frames arrived of the ${push.writer.frames} sent`);

  await pushAndVerify(t, gw, nginx, browser.page, {
    mediaSessionId: transcoded.body.mediaSessionId,
    rtmpStream: 'rtmp_av1',
    statsExpression: 'window.pc.getStats()',
    seconds: 4,
  });
});

t.test('an AV1 push whose receiver restarts reconnects with a new sequence start, decodable at once', async (t) => {
  const { gw } = stage;
  const started = await gw.post('/rest-api/push/startup', {
    streamName: 'av1',
    rtmpUrl: nms.url('again'),
    rtmpTransponderFullUrl: true,
    videoCodec: 'passthrough',
  });
  t.equal(started.status, 200, JSON.stringify(started.body));
  t.match(started.body, { transcoding: false, videoCodec: 'AV1' }, 'passthrough asked: a server said to take AV1');
  const push = gw.pushService.get(started.body.mediaSessionId);
  await waitFor('60 frames sent', () => push.writer.frames >= 60, 20_000);
  await nms.restart();
  await waitFor('the push to reconnect', () => push.counters.reconnects >= 1 && push.state === 'running', 30_000);
  const before = push.writer.frames;
  await waitFor('90 more frames sent', () => push.writer.frames >= before + 90, 20_000);
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId })).status, 200);
  let files: string[] = [];
  await waitFor('the recording after the restart to finish', async () => {
    files = await nms.recordings('again');
    return files.length >= 2 && nms.publishEnded('again');
  });
  const frames = await checkReceived(t, files[files.length - 1]!, 'av1-after-restart');
  t.ok(frames >= 80, `${frames} frames after the restart`);
});

t.test('the SDK asks Chromium for AV1 (preferCodec): untouched to YouTube, H.264 to nginx-rtmp, at once', async (t) => {
  const { gw, nginx, browser } = stage;
  const page = browser.page;
  await page.goto(gw.baseUrl + '/health');
  await page.evaluate(
    async ([passed, transcoded]) => {
      const { createSession } = await import('/sdk/gateway.js' as string);
      const session = createSession({ urlServer: location.origin });
      await new Promise<void>((resolve) => session.on('ESTABLISHED', () => resolve()));
      const stream = session.createStream({
        name: 'sdkav1',
        preferCodec: 'av1',
        destinations: [
          { id: 'yt', rtmpUrl: passed, rtmpTransponderFullUrl: true, platform: 'youtube' },
          { id: 'own', rtmpUrl: transcoded },
        ],
      });
      (window as any).sdkStream = stream;
      stream.publish();
    },
    [nms.url('sdkav1'), nginx.url()] as const,
  );
  await waitFor('the SDK publish', async () => gw.publishers.get('sdkav1')?.state === 'publishing', 15_000);
  t.equal(gw.publishers.get('sdkav1')!.videoCodec, 'AV1', 'Chromium sends AV1, as the SDK asked');
  let pushes: any[] = [];
  await waitFor(
    'both pushes running',
    async () => {
      pushes = (await gw.post('/rest-api/push/find', { streamName: 'sdkav1' })).body;
      return Array.isArray(pushes) && pushes.length === 2 && pushes.every((p) => p.state === 'running');
    },
    20_000,
  );
  t.match(
    pushes.find((p) => p.platform === 'youtube'),
    { transcoding: false, videoCodec: 'AV1' },
    'to YouTube: passed through',
  );
  t.match(
    pushes.find((p) => !p.platform),
    { transcoding: true, videoCodec: 'H264' },
    'to nginx-rtmp: transcoded',
  );
  const push = gw.pushService.get(pushes.find((p) => p.platform === 'youtube').mediaSessionId);
  await waitFor('90 AV1 frames sent', () => push.writer.frames >= 90, 30_000);
  await waitFor('H.264 at nginx-rtmp', async () =>
    (await nginx.streams()).some((s) => s.name === 'rtmp_sdkav1' && s.width === 1280),
  );
  await page.evaluate(() => (window as any).sdkStream.stop());
  let file = '';
  await waitFor('node-media-server to finish its recording', async () => {
    [file = ''] = await nms.recordings('sdkav1');
    return file !== '' && nms.publishEnded('sdkav1');
  });
  t.ok((await checkReceived(t, file, 'sdk-av1')) >= 80);
});
