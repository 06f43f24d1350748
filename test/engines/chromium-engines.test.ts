import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { TestBrowser } from '../../kit/browser.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { whipPublish } from '../helpers/e2e.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

// Chromium publishing to each WebRTC engine: WHIP with H.264, WHIP with VP8 only (transcoded), and
// the browser SDK through the publish page. Each is pushed to nginx-rtmp, which must receive
// H.264 and AAC at the camera's size.

/** A WHIP publish whose video offers VP8 alone (`setCodecPreferences`), as a VP8-only client would, keeping its size. */
async function whipVp8(page: Page, url: string): Promise<{ status: number; answer: string }> {
  return page.evaluate(async (whipUrl) => {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    (window as any).vp8 = pc;
    for (const track of media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly' });
      if (track.kind !== 'video') continue;
      transceiver.setCodecPreferences(
        RTCRtpSender.getCapabilities('video')!.codecs.filter((c) => /VP8|rtx/i.test(c.mimeType)),
      );
      const parameters: any = transceiver.sender.getParameters();
      parameters.degradationPreference = 'maintain-resolution';
      await transceiver.sender.setParameters(parameters);
    }
    await pc.setLocalDescription(await pc.createOffer());
    const response = await fetch(whipUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: pc.localDescription!.sdp,
    });
    const answer = await response.text();
    if (response.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    return { status: response.status, answer };
  }, url);
}

/** Pushes `name` to nginx and waits for H.264 and AAC there at 1280x720; then ends the push. */
async function pushed(t: Test, gw: TestGateway, nginx: NginxRtmp, name: string, transcoding: boolean): Promise<void> {
  await waitFor(`${name} publishing`, async () => gw.publishers.get(name)?.state === 'publishing', 20000);
  const res = await gw.post('/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.match(res.body, { transcoding });
  const stream = await waitFor(
    `${name} at the RTMP server`,
    async () => (await nginx.streams()).find((s) => s.name === `rtmp_${name}` && s.width > 0),
    20000,
  );
  t.match(stream, { videoCodec: 'H264', audioCodec: 'AAC', width: 1280, height: 720 });
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId })).status, 200);
}

let browser: TestBrowser;
let nginx: NginxRtmp;
t.before(async () => {
  nginx = await NginxRtmp.start();
  browser = await TestBrowser.launch();
});
t.teardown(async () => {
  await browser?.close();
  await nginx?.stop();
  await stopAllProcesses();
});

for (const engine of ['mediasoup', 'werift'] as const) {
  t.test(engine, async (t) => {
    const gw = await startGateway({ webrtc_engine: engine });
    t.teardown(() => gw.close());
    const page = browser.page;
    await page.goto(gw.baseUrl + '/health');

    // Each WHIP case: how the page publishes, and its connection (window.pc, window.vp8), closed after.
    const whipCases = [
      { title: 'WHIP, H.264', codec: 'H264', publish: whipPublish, connection: 'pc', transcoding: false },
      { title: 'WHIP, VP8 only: transcoded', codec: 'VP8', publish: whipVp8, connection: 'vp8', transcoding: true },
    ] as const;
    for (const { title, codec, publish, connection, transcoding } of whipCases) {
      await t.test(title, async (t) => {
        const name = `${codec.toLowerCase()}-${engine}`;
        const whip = await publish(page, `${gw.baseUrl}/whip/${name}`);
        t.equal(whip.status, 201, whip.answer);
        t.match(whip.answer, new RegExp(`a=rtpmap:\\d+ ${codec}/90000`));
        await pushed(t, gw, nginx, name, transcoding);
        await page.evaluate((key) => (window as any)[key].close(), connection);
      });
    }

    await t.test('the SDK, through the publish page, with rtmpUrl', async (t) => {
      await page.goto(gw.baseUrl + '/');
      await page.fill('#name', `sdk-${engine}`);
      await page.fill('#rtmpUrl', nginx.url());
      await page.uncheck('#fullUrl');
      await page.click('#publish');
      await waitFor('the page to say Live', async () => (await page.textContent('#status')) === 'Live', 20000);
      const stream = await waitFor(
        'video at the RTMP server',
        async () => (await nginx.streams()).find((s) => s.name === `rtmp_sdk-${engine}` && s.width > 0),
        20000,
      );
      t.match(stream, { videoCodec: 'H264', audioCodec: 'AAC', width: 1280, height: 720 });
      await page.click('#stop');
      await waitFor(
        'the RTMP stream to end',
        async () => !(await nginx.streams()).some((s) => s.name === `rtmp_sdk-${engine}`),
        10000,
      );
      await waitFor('no publisher left', () => gw.publishers.all().length === 0, 10000);
    });
  });
}
