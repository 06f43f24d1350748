import { readCaptions } from '../../kit/captions.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import type { Page } from 'playwright-core';
import { keyframeCount, maxKeyframeGap, nonMonotonic, probe } from '../../kit/probe.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { freePort } from '../../kit/rtmp-server.js';
import { useStage } from '../helpers/stage.js';

const ARTIFACTS = join(import.meta.dirname ?? '.', '..', '..', '.test-output');
const stage = useStage();

/**
 * Before the page's scripts run: every WebSocket and peer connection it makes is kept, and
 * `window.cutNetwork(ms)` closes them and refuses new WebSockets for `ms`, as a network that drops.
 */
async function withNetworkSwitch(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as any;
    const sockets: WebSocket[] = [];
    const peers: RTCPeerConnection[] = [];
    let offlineUntil = 0;
    const NativeWebSocket = WebSocket;
    const NativePeerConnection = RTCPeerConnection;
    w.WebSocket = class extends NativeWebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        // While "offline", the gateway cannot be reached: a path of the same origin that it refuses
        // to upgrade (the page's CSP allows only its own origin).
        super(Date.now() < offlineUntil ? String(url).replace(/\/ws$/, '/offline') : url, protocols);
        sockets.push(this);
      }
    };
    w.RTCPeerConnection = class extends NativePeerConnection {
      constructor(config?: RTCConfiguration) {
        super(config);
        peers.push(this);
      }
    };
    w.cutNetwork = (ms: number) => {
      offlineUntil = Date.now() + ms;
      for (const pc of peers) pc.close();
      for (const socket of sockets) socket.close(4000, 'network cut by the test');
    };
  });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Opens the page and keeps every text the status badge shows. */
async function openPage(page: Page): Promise<void> {
  await page.goto(stage.gw.baseUrl + '/');
  await page.evaluate(() => {
    const w = window as any;
    const status = document.getElementById('status')!;
    w.statusHistory = [status.textContent];
    new MutationObserver(() => w.statusHistory.push(status.textContent)).observe(status, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
  await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 10000);
}

const rowState = (page: Page, n: number): Promise<string | null> =>
  page.textContent(`.destination:nth-child(${n}) .state`);

/**
 * Publishes `name` from the page to nginx-rtmp (full URL, stream `name`) until the page says Live;
 * answers the RTMP session and the push as find shows them.
 */
async function goLive(
  page: Page,
  name: string,
): Promise<{ session: { clientId: string }; push: { mediaSessionId: string } }> {
  await openPage(page);
  await page.fill('#name', name);
  await page.fill('#rtmpUrl', `${stage.nginx.url()}/${name}`);
  await page.click('#publish');
  await waitFor('live', async () => (await page.textContent('#status')) === 'Live', 20000);
  const session = await waitFor(
    'video at the RTMP server',
    async () => (await stage.nginx.streams()).find((s) => s.name === name && s.width > 0),
    10000,
  );
  const [push] = (await stage.gw.post('/rest-api/push/find', { streamName: name })).body;
  return { session, push };
}

t.test(
  "each destination is checked as it is entered: reachable or not, told on its row; the SDK's call answers the same",
  async (t) => {
    const page = stage.browser.page;
    await openPage(page);
    const checkLine = (): Promise<string | null> => page.textContent('.destination:nth-child(1) .check');
    await page.fill('#rtmpUrl', `${stage.nginx.url()}/checked_key`);
    await page.press('#rtmpUrl', 'Tab'); // the field's change
    await waitFor(
      'the check to answer',
      async () => /reachable, application accepted/.test((await checkLine()) ?? ''),
      10000,
    );
    t.pass(`told: ${await checkLine()}`);
    await page.fill('#rtmpUrl', `rtmp://127.0.0.1:${await freePort()}/live/key`);
    await page.press('#rtmpUrl', 'Tab');
    await waitFor(
      'the unreachable one told',
      async () => /not reachable: .*ECONNREFUSED/.test((await checkLine()) ?? ''),
      10000,
    );
    t.pass(`told: ${await checkLine()}`);
    await page.fill('#rtmpUrl', 'http://example.com/live');
    await page.press('#rtmpUrl', 'Tab');
    await waitFor(
      'a URL it cannot use told',
      async () => /Cannot use this destination: rtmpUrl: must start with/.test((await checkLine()) ?? ''),
      10000,
    );
    t.equal((await stage.nginx.streams()).length, 0, 'nothing was published at the RTMP server');
    const report = await page.evaluate(async (url) => {
      const { createSession } = await import('/sdk/gateway.js' as string);
      const session = createSession({ urlServer: location.origin });
      await new Promise<void>((resolve) => session.on('ESTABLISHED', () => resolve()));
      const answer = await session.checkDestination({ rtmpUrl: url, rtmpTransponderFullUrl: true, publish: true });
      session.disconnect();
      return answer;
    }, `${stage.nginx.url()}/sdk_check_KEY31`);
    t.match(
      report,
      { ok: true, reachable: true, applicationAccepted: true, keyAccepted: true, rtmpUrl: /\/live\/\*\*\*$/ },
      'session.checkDestination: the key accepted too',
    );
    await page.fill('#rtmpUrl', '');
  },
);

t.test('a refused destination shows as failed with its reason within 2 s, and the page never says Live', async (t) => {
  const page = stage.browser.page;
  await openPage(page);
  await page.fill('#name', 'refused');
  await page.fill('#rtmpUrl', `rtmp://127.0.0.1:${await freePort()}/live/demo`);
  await page.click('#publish');
  await waitFor(
    'publishing',
    async () => page.evaluate(() => (window as any).gatewayStream?.status() === 'PUBLISHING'),
    15000,
  );
  const publishingAt = Date.now();
  await waitFor('the destination to fail', async () => (await rowState(page, 1)) === 'Failed', 2000, 20);
  t.ok(Date.now() - publishingAt <= 2000, `shown failed ${Date.now() - publishingAt} ms after publishing`);
  t.match(
    await page.textContent('.destination:nth-child(1) .reason'),
    /ECONNREFUSED|refused|unreachable/i,
    'with the reason',
  );
  const destination = await page.evaluate(() => (window as any).gatewayStream.destinations()[0]);
  t.match(
    destination,
    { state: 'failed', code: 'destination_unreachable', url: /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/\*\*\*$/ },
    'the SDK tells the code and the masked URL',
  );
  await sleep(500);
  const history: string[] = await page.evaluate(() => (window as any).statusHistory);
  t.notOk(history.includes('Live'), `the status never said Live: ${history.join(' → ')}`);
  t.equal(await page.textContent('#status'), 'Not live: every destination failed');
  await screenshot(page, 'publish-page-refused');

  // Corrected and tried again while the stream goes on.
  await page.fill('#rtmpUrl', stage.nginx.url() + '/refused_fixed');
  await page.click('.destination:nth-child(1) .go');
  await waitFor(
    'the corrected destination to be live',
    async () => (await page.textContent('#status')) === 'Live',
    15000,
  );
  t.ok(
    (await stage.nginx.streams()).some((s) => s.name === 'refused_fixed'),
    'the RTMP server has it',
  );
  await page.click('#stop');
  t.equal(await rowState(page, 1), 'Stopped', 'the row no longer says Live once stopped');
});

t.test('two destinations: each shows live, and both RTMP servers receive the stream', async (t) => {
  const page = stage.browser.page;
  await openPage(page);
  await page.fill('#name', 'two');
  await page.fill('#rtmpUrl', stage.nginx.url() + '/two_a');
  await page.click('#addDestination');
  await page.fill('.destination:nth-child(2) .url', stage.nginx.url() + '/two_b');
  await page.click('#publish');
  await waitFor(
    'both destinations live',
    async () => (await rowState(page, 1)) === 'Live' && (await rowState(page, 2)) === 'Live',
    20000,
  );
  t.equal(await page.textContent('#status'), 'Live');
  await waitFor(
    'send statistics',
    async () => /1280×720 · \d+ fps · [1-9]\d* kb\/s/.test((await page.textContent('#stats')) ?? ''),
    5000,
  );
  t.match(await page.textContent('#stats'), /^1280×720/, 'the page shows what it sends');
  await screenshot(page, 'publish-page-live');
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 }); // a phone
  t.ok(
    await page.evaluate(() => document.documentElement.scrollWidth <= 390),
    "nothing is wider than a phone's screen",
  );
  await screenshot(page, 'publish-page-phone');
  if (size) await page.setViewportSize(size);
  const pushes = (await stage.gw.post('/rest-api/push/find', { streamName: 'two' })).body;
  t.equal(pushes.length, 2, 'two pushes');
  // Captions typed in the page: in both destinations' video (read back below).
  t.notOk(await page.isHidden('#captions'), 'the captions box shows while live');
  for (const caption of ['Live from the publish page.', 'A second caption.']) {
    await page.fill('#captionText', caption);
    await page.click('#sendCaption');
    await waitFor(
      'the caption sent',
      async () => (await page.textContent('#status')) === 'Caption sent to 2 destinations',
      5000,
    );
    await page.evaluate(() => (document.getElementById('status')!.textContent = ''));
  }
  if (process.env.GATEWAY_WEBRTC_ENGINE !== 'werift') {
    // What the gateway receives, played back from it (WHEP) beside the camera's own preview.
    await page.click('#received');
    await waitFor(
      "the gateway's picture playing",
      () =>
        page.evaluate(() => {
          const video = document.getElementById('receivedPlayer') as HTMLVideoElement;
          return !video.hidden && video.videoWidth === 1280 && video.currentTime > 0.5;
        }),
      20000,
    );
    t.pass('the page shows what the gateway receives: 1280x720, playing');
    // A caption sent while it plays reaches the player over its data channel, as a cue of its text track.
    await page.fill('#captionText', 'Shown to viewers too.');
    await page.click('#sendCaption');
    await waitFor(
      "the caption in the player's text track",
      () =>
        page.evaluate(() => {
          const video = document.getElementById('receivedPlayer') as HTMLVideoElement;
          const track = Array.from(video.textTracks).find((t) => t.kind === 'captions');
          return (
            track?.mode === 'showing' &&
            Array.from(track.cues ?? []).some((cue) => (cue as VTTCue).text === 'Shown to viewers too.')
          );
        }),
      10000,
    );
    t.pass("the caption shows in the player's captions track");
    await page.click('#received');
    await waitFor('the player put away', () => page.isHidden('#receivedPlayer'), 5000);
  }
  await sleep(6000);

  // Removing one while live ends that push only.
  await page.click('.destination:nth-child(2) .remove');
  await waitFor(
    'two_b to end at the server',
    async () => !(await stage.nginx.streams()).some((s) => s.name === 'two_b'),
    8000,
  );
  t.ok(
    (await stage.nginx.streams()).some((s) => s.name === 'two_a'),
    'two_a goes on',
  );
  await page.click('#stop');
  await waitFor(
    'two_a to end at the server',
    async () => !(await stage.nginx.streams()).some((s) => s.name === 'two_a'),
    8000,
  );
  for (const name of ['two_a', 'two_b']) {
    const rec = await probe(stage.nginx.recording(name));
    const video = rec.streams.find((s) => s.codec_type === 'video');
    t.match(video, { codec_name: 'h264', width: 1280, height: 720 }, `${name}: H.264 1280x720`);
    t.equal(rec.streams.find((s) => s.codec_type === 'audio')?.codec_name, 'aac', `${name}: AAC`);
    t.ok(keyframeCount(rec.video) >= 3, `${name}: ${keyframeCount(rec.video)} keyframes`);
    t.ok(maxKeyframeGap(rec.video) <= 2.0, `${name}: keyframe gap ${maxKeyframeGap(rec.video).toFixed(3)} s`);
    t.same(nonMonotonic(rec.video), [], `${name}: video timestamps strictly increase`);
  }
  const shown = (await readCaptions(stage.nginx.recording('two_a'))).map((cue) => cue.text).join(' | ');
  t.ok(
    shown.includes('Live from the publish page.'),
    `the caption typed in the page, read back from the destination (${shown})`,
  );
});

t.test('the page network drops for 5 s: the SDK reconnects, and the same RTMP session goes on', async (t) => {
  const page = stage.browser.page;
  await withNetworkSwitch(page);
  const { session: before, push } = await goLive(page, 'drop');

  await page.evaluate(() => (window as any).cutNetwork(5000));
  await waitFor(
    'the page to tell it reconnects',
    async () => /reconnecting/i.test((await page.textContent('#status')) ?? ''),
    3000,
  );
  t.equal(await rowState(page, 1), 'Reconnecting…', 'the destination shows it');
  await waitFor(
    'the push to hold the broadcast',
    async () => (await stage.gw.post('/rest-api/push/find', { streamName: 'drop' })).body?.[0]?.state === 'standby',
    5000,
  );
  await screenshot(page, 'publish-page-reconnecting');
  const cutAt = Date.now();
  await waitFor('live again', async () => (await page.textContent('#status')) === 'Live', 25000).catch(async (e) => {
    t.comment(
      JSON.stringify(
        await page.evaluate(() => [(window as any).statusHistory, (window as any).gatewayStream?.destinations()]),
      ),
    );
    t.comment(JSON.stringify((await stage.gw.post('/rest-api/push/find', { streamName: 'drop' })).body));
    throw e;
  });
  t.comment(`live again ${Date.now() - cutAt} ms after the push went to standby`);
  const [again] = (await stage.gw.post('/rest-api/push/find', { streamName: 'drop' })).body;
  t.match(again, { mediaSessionId: push.mediaSessionId, state: 'running' }, 'the same push runs');
  const after = (await stage.nginx.streams()).find((s) => s.name === 'drop');
  t.equal(after?.clientId, before.clientId, 'in the same RTMP session');
  const history: string[] = await page.evaluate(() => (window as any).statusHistory);
  t.ok(
    history.some((s) => /reconnecting/i.test(s ?? '')),
    `the page said what happened: ${history.join(' → ')}`,
  );
  await page.click('#stop');
  await waitFor(
    'the push to end',
    async () => (await stage.gw.post('/rest-api/push/find', { streamName: 'drop' })).status === 404,
    8000,
  );
});

t.test(
  'the gateway loses the publisher (its media stopped): the page publishes again, and the same RTMP session goes on',
  async (t) => {
    const page = stage.browser.page;
    const { session: before, push } = await goLive(page, 'silent');
    const { id } = stage.gw.publishers.get('silent')!;
    // What the gateway does when no media arrives for webrtc_media_timeout_ms: the publisher is lost.
    await stage.gw.plane.unpublish('silent', id, 'no media for 5000 ms', true);
    await waitFor(
      'live again',
      async () => (await page.textContent('#status')) === 'Live' && stage.gw.publishers.get('silent')?.id !== id,
      15000,
    );
    const history: string[] = await page.evaluate(() => (window as any).statusHistory);
    t.ok(
      history.some((s) => /reconnecting/i.test(s ?? '')),
      `the page told it: ${history.join(' → ')}`,
    );
    t.notOk(
      history.some((s) => /^Stopped/.test(s ?? '')),
      'and never that it stopped',
    );
    const [again] = (await stage.gw.post('/rest-api/push/find', { streamName: 'silent' })).body;
    t.match(again, { mediaSessionId: push.mediaSessionId, state: 'running' }, 'the same push runs');
    t.equal(
      (await stage.nginx.streams()).find((s) => s.name === 'silent')?.clientId,
      before.clientId,
      'in the same RTMP session',
    );
    await page.click('#stop');
    await waitFor(
      'the push to end',
      async () => (await stage.gw.post('/rest-api/push/find', { streamName: 'silent' })).status === 404,
      8000,
    );
  },
);
