import t from 'tap';
import { TestBrowser } from '../helpers/browser.js';
import { pushAndVerify } from '../helpers/e2e.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { stopAllProcesses, waitFor } from '../helpers/processes.js';
import { NginxRtmp } from '../helpers/rtmp-server.js';

let nginx: NginxRtmp;
let gw: TestGateway;
let browser: TestBrowser;

t.before(async () => {
  nginx = await NginxRtmp.start();
  gw = await startGateway();
  browser = await TestBrowser.launch();
});
t.teardown(async () => {
  await browser?.close();
  await gw?.close();
  await nginx?.stop();
  await stopAllProcesses();
});

t.test('the publish page republishes the camera to RTMP through the SDK with rtmpUrl', async (t) => {
  const page = browser.page;
  const loaded = Date.now();
  await page.goto(gw.baseUrl + '/');
  await page.fill('#name', 'sdk1');
  await page.fill('#rtmpUrl', nginx.url());
  await page.uncheck('#fullUrl');
  await page.click('#publish');
  await waitFor('the page to say Live', async () => (await page.textContent('#status')) === 'Live', 15000);

  const stream = await waitFor('video at the RTMP server', async () => (await nginx.streams()).find((s) => s.name === 'rtmp_sdk1' && s.width > 0), 15000, 10);
  t.comment(`page load to the stream's first video at the RTMP server: ${Date.now() - loaded} ms`);
  t.match(stream, { app: 'live', videoCodec: 'H264', audioCodec: 'AAC', width: 1280, height: 720, address: '127.0.0.1' });

  const all = await gw.post('/rest-api/push/find_all');
  t.equal(all.status, 200);
  t.equal(all.body.length, 1, 'the SDK-started transponder shows in find_all');
  t.match(all.body[0], { streamName: 'rtmp_sdk1', sourceStreamName: 'sdk1', rtmpUrl: nginx.url(), muted: false, soundEnabled: false, transcoding: false });

  await pushAndVerify(t, gw, nginx, page, {
    mediaSessionId: all.body[0].mediaSessionId,
    rtmpStream: 'rtmp_sdk1',
    statsExpression: 'window.gatewayStream.getStats()',
    seconds: 8,
  });
  t.equal(await page.textContent('#status'), 'Live', 'terminating the transponder leaves the WebRTC publish alone');
});

t.test('when the publisher stops, its transponders end', async (t) => {
  const page = browser.page;
  await page.reload();
  await page.fill('#name', 'sdk2');
  await page.fill('#rtmpUrl', nginx.url());
  await page.uncheck('#fullUrl');
  await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 10000);
  await page.click('#publish');
  await waitFor('video at the RTMP server', async () => (await nginx.streams()).some((s) => s.name === 'rtmp_sdk2' && s.width > 0), 20000);
  await page.click('#stop');
  await waitFor('the RTMP stream to end', async () => !(await nginx.streams()).some((s) => s.name === 'rtmp_sdk2'), 8000);
  t.equal((await gw.post('/rest-api/push/find_all')).status, 404, 'no transponder is left');
  t.equal(gw.publishers.all().length, 0, 'no publisher is left');
});
