import t from 'tap';
import { pushAndVerify } from '../helpers/e2e.js';
import { waitFor } from '../../kit/processes.js';
import { findPush } from '../helpers/pushes.js';
import { useStage } from '../helpers/stage.js';

const stage = useStage();

t.test('the publish page republishes the camera to RTMP through the SDK with rtmpUrl', async (t) => {
  const page = stage.browser.page;
  const loaded = Date.now();
  await page.goto(stage.gw.baseUrl + '/');
  await page.fill('#name', 'sdk1');
  await page.fill('#rtmpUrl', stage.nginx.url());
  await page.uncheck('#fullUrl');
  await page.click('#publish');
  await waitFor('the page to say Live', async () => (await page.textContent('#status')) === 'Live', 15000);

  const stream = await waitFor(
    'video at the RTMP server',
    async () => (await stage.nginx.streams()).find((s) => s.name === 'rtmp_sdk1' && s.width > 0),
    15000,
    10,
  );
  t.comment(`page load to the stream's first video at the RTMP server: ${Date.now() - loaded} ms`);
  t.match(stream, {
    app: 'live',
    videoCodec: 'H264',
    audioCodec: 'AAC',
    width: 1280,
    height: 720,
    address: '127.0.0.1',
    flashver: 'FMLE/3.0 (compatible; FMSc/1.0)',
  });

  const all = await stage.gw.post('/rest-api/push/find_all');
  t.equal(all.status, 200);
  t.equal(all.body.length, 1, 'the SDK-started push shows in find_all');
  t.match(all.body[0], {
    streamName: 'rtmp_sdk1',
    sourceStreamName: 'sdk1',
    rtmpUrl: stage.nginx.url(),
    muted: false,
    soundEnabled: false,
    transcoding: false,
  });

  await pushAndVerify(t, stage.gw, stage.nginx, page, {
    mediaSessionId: all.body[0].mediaSessionId,
    rtmpStream: 'rtmp_sdk1',
    statsExpression: 'window.gatewayStream.getStats()',
    seconds: 8,
  });
  t.equal(
    await page.evaluate(() => (window as any).gatewayStream.status()),
    'PUBLISHING',
    'terminating the push leaves the WebRTC publish alone',
  );
  await waitFor(
    'the page to show the destination stopped',
    async () => (await page.textContent('.destination .state')) === 'Stopped',
    5000,
  );
  t.not(await page.textContent('#status'), 'Live', 'and the page no longer says Live');
});

t.test('when the publisher stops, its pushes end', async (t) => {
  const page = stage.browser.page;
  await page.reload();
  await page.fill('#name', 'sdk2');
  await page.fill('#rtmpUrl', stage.nginx.url());
  await page.uncheck('#fullUrl');
  await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 10000);
  await page.click('#publish');
  await waitFor(
    'video at the RTMP server',
    async () => (await stage.nginx.streams()).some((s) => s.name === 'rtmp_sdk2' && s.width > 0),
    20000,
  );
  await page.click('#stop');
  await waitFor(
    'the RTMP stream to end',
    async () => !(await stage.nginx.streams()).some((s) => s.name === 'rtmp_sdk2'),
    8000,
  );
  t.equal((await stage.gw.post('/rest-api/push/find_all')).status, 404, 'no push is left');
  t.equal(stage.gw.publishers.all().length, 0, 'no publisher is left');
});

t.test(
  "closing the publisher's page keeps the RTMP session with a still picture; publishing the stream again takes it back",
  async (t) => {
    const page = stage.browser.page;
    const publish = async (): Promise<void> => {
      await page.goto(stage.gw.baseUrl + '/');
      await page.fill('#name', 'sdk3');
      await page.fill('#rtmpUrl', stage.nginx.url());
      await page.uncheck('#fullUrl');
      await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 10000);
      await page.click('#publish');
      await waitFor('the page to say Live', async () => (await page.textContent('#status')) === 'Live', 15000);
    };
    const find = (): Promise<any> => findPush(stage.gw, 'sdk3');
    await publish();
    const first = await waitFor(
      'video at the RTMP server',
      async () => (await stage.nginx.streams()).find((s) => s.name === 'rtmp_sdk3' && s.width > 0),
      20000,
    );
    // Video can reach the server before ffmpeg's first audio has: only an output that is up is held.
    const { mediaSessionId } = await waitFor(
      'the push to be running',
      async () => ((await find())?.state === 'running' ? find() : undefined),
      15000,
    );

    await page.goto('about:blank'); // the page is gone: its WebSocket and peer connection with it
    const standby = await waitFor(
      'standby',
      async () => ((await find())?.state === 'standby' ? find() : undefined),
      10000,
    );
    // The page's WebSocket and its peer connection end together: whichever the gateway hears first says why.
    t.match(standby, {
      mediaSessionId,
      lastError: /publisher lost: (SDK session disconnected|WebRTC connection closed)/,
    });
    t.equal(stage.gw.publishers.all().length, 0, 'the publisher is gone');
    const bytesBefore = (await stage.nginx.streams()).find((s) => s.name === 'rtmp_sdk3')!.bytesIn;
    await new Promise((r) => setTimeout(r, 2000));
    const held = (await stage.nginx.streams()).find((s) => s.name === 'rtmp_sdk3');
    t.equal(held?.clientId, first.clientId, 'the RTMP session is kept');
    t.ok(held!.bytesIn > bytesBefore, `media keeps flowing in standby: ${held!.bytesIn - bytesBefore} bytes in 2 s`);

    await publish();
    const live = await waitFor(
      'running again',
      async () => ((await find())?.state === 'running' ? find() : undefined),
      15000,
    );
    t.equal(live.mediaSessionId, mediaSessionId, 'the same push goes on');
    t.equal((await stage.gw.post('/rest-api/push/find_all')).body.length, 1, 'and no second one was started');
    t.equal(
      (await stage.nginx.streams()).find((s) => s.name === 'rtmp_sdk3')?.clientId,
      first.clientId,
      'in the same RTMP session',
    );
    await stage.gw.post('/rest-api/push/terminate', { mediaSessionId });
    await page.click('#stop');
  },
);

t.test(
  'the SDK starts a mixer and adds its own stream to it; the mixer is pushed like any stream, and ends with the page',
  async (t) => {
    const page = stage.browser.page;
    await page.goto(stage.gw.baseUrl + '/');
    await page.fill('#name', 'sdkmix');
    await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 10000);
    await page.click('#publish');
    await waitFor(
      'the stream publishing',
      async () => stage.gw.publishers.get('sdkmix')?.state === 'publishing',
      15000,
    );
    const answers = await page.evaluate(async () => {
      const w = window as any;
      const started = await w.gatewaySession.startMixer({
        uri: 'mixer://room',
        layout: 'grid',
        width: 640,
        height: 360,
      });
      const joined = await w.gatewayStream.joinMixer('mixer://room', { label: 'Me' });
      const refused = await w.gatewayStream.joinMixer('mixer://nowhere').then(
        () => undefined,
        (error: any) => ({ message: error.message, code: error.code, field: error.field }),
      );
      return { started, joined, refused };
    });
    t.match(answers.started, { uri: 'mixer://room', localStreamName: 'room', width: 640, height: 360, inputs: [] });
    t.match(answers.joined, { uri: 'mixer://room', inputs: [{ streamName: 'sdkmix', label: 'Me', publishing: true }] });
    t.match(
      answers.refused,
      { code: 'not_found', field: 'uri', message: /no mixer/ },
      'a mixer that does not run: the error names the field',
    );

    const push = await stage.gw.post('/rest-api/push/startup', {
      streamName: 'room',
      rtmpUrl: `${stage.nginx.url()}/room`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    const arrived = await waitFor(
      'the mixer at nginx-rtmp',
      async () => (await stage.nginx.streams()).find((s) => s.name === 'room' && s.width > 0),
      15000,
    );
    t.match(arrived, { videoCodec: 'H264', width: 640, height: 360 });

    await page.goto('about:blank'); // the page that started the mixer is gone
    await waitFor(
      'the mixer ended with its session',
      async () => (await stage.gw.post('/rest-api/mixer/find_all', {})).status === 404,
      10000,
    );
    await waitFor(
      'its push with it',
      async () => (await stage.gw.post('/rest-api/push/find_all')).status === 404,
      10000,
    );
  },
);
