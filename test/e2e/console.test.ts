import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { waitFor } from '../../kit/processes.js';
import { testFixture } from '../helpers/synthetic.js';
import { useStage } from '../helpers/stage.js';

const ARTIFACTS = join(import.meta.dirname ?? '.', '..', '..', '.test-output');
const KEY = 'console-test-control-key-0123456789';
const recordDir = await mkdtemp(join(tmpdir(), 'console-recordings-'));
const thumbnailDir = await mkdtemp(join(tmpdir(), 'console-thumbnails-'));
const stage = useStage([
  {
    api_keys: [{ id: 'ops', secret: KEY, scope: ['control', 'metrics'] }],
    record_dir: recordDir,
    thumbnail_interval_s: 1,
    thumbnail_dir: thumbnailDir,
  },
]);
t.teardown(() => rm(recordDir, { recursive: true, force: true }));
t.teardown(() => rm(thumbnailDir, { recursive: true, force: true }));
let publisher: SyntheticPublisher | undefined;
t.teardown(() => publisher?.stop());

const find = async (): Promise<{ status: number; body: any }> => {
  const response = await fetch(stage.gw.baseUrl + '/rest-api/push/find_all', {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
  });
  return { status: response.status, body: await response.json() };
};

t.test(
  'the console needs the control key; it starts a push, shows it running, mutes it, shows a snapshot, terminates it and shows it gone',
  async (t) => {
    const page = stage.browser.page;
    const unauthenticated = await fetch(stage.gw.baseUrl + '/rest-api/console/events');
    t.equal(unauthenticated.status, 401, 'the event stream needs the key');
    await unauthenticated.body?.cancel();

    await page.goto(stage.gw.baseUrl + '/console');
    await page.waitForSelector('#keyForm:not([hidden])', { timeout: 5000 });
    await page.fill('#apiKey', KEY);
    await page.click('#keyForm button');
    await waitFor('live updates', async () => (await page.textContent('#connection')) === 'Live updates', 5000);

    publisher = await SyntheticPublisher.publish(testFixture(), stage.gw.baseUrl, 'cam', { token: KEY });
    const card = '.stream[data-name="cam"]';
    await waitFor(
      'the stream to appear without a reload',
      async () => (await page.textContent(`${card} .what`).catch(() => null)) === 'publishing',
      8000,
    );
    // The size is known from the first keyframe, which may come a view or two after the stream does.
    await waitFor(
      'its codec and size',
      async () => /H264 1280×720/.test((await page.textContent(`${card} .facts`)) ?? ''),
      10000,
    );
    t.match(await page.textContent(`${card} .facts`), /H264 1280×720/, 'with its codec and size');
    // The grid of thumbnails: cam's, fetched with the key from GET /rest-api/stream/thumbnail.
    const thumbnail = '#thumbnails figure[data-name="cam"] img';
    const thumbnailWidth = (): Promise<number> =>
      page.evaluate(
        (selector) => (document.querySelector(selector) as HTMLImageElement | null)?.naturalWidth ?? 0,
        thumbnail,
      );
    await waitFor('its thumbnail in the grid', async () => (await thumbnailWidth()) > 0, 10000);
    t.equal(await thumbnailWidth(), 320, "the grid shows the stream's thumbnail (thumbnail_width wide)");

    await page.fill(`${card} .url`, stage.nginx.url());
    await page.click(`${card} .start button`);
    await waitFor(
      'the push to show running',
      async () => (await page.textContent(`${card} .push .state`).catch(() => null)) === 'running',
      10000,
    );
    const [push] = (await find()).body;
    t.equal(
      await page.getAttribute(`${card} .push`, 'data-id'),
      push.mediaSessionId,
      'the row is the push the API lists',
    );
    t.equal(await page.textContent(`${card} .push .target`), stage.nginx.url(), 'with its destination');
    await waitFor(
      'the RTMP server to receive it',
      async () => (await stage.nginx.streams()).some((s) => s.name === 'rtmp_cam' && s.width > 0),
      10000,
    );
    await waitFor(
      'a bitrate',
      async () => /^\d+ kb\/s$/.test((await page.textContent(`${card} .push .bitrate`)) ?? ''),
      6000,
    );
    // The charts draw what the views bring: a line of several points, below the chart's top.
    const drawn = async (chart: string): Promise<number[][]> => {
      const points = (await page.getAttribute(`${card} ${chart} polyline`, 'points').catch(() => null)) ?? '';
      return points
        .split(' ')
        .filter(Boolean)
        .map((p) => p.split(',').map(Number));
    };
    for (const chart of ['.chart-in', '.chart-fps', '.push .chart-bitrate', '.push .chart-lag']) {
      const points = await waitFor(
        `${chart} drawn`,
        async () => ((await drawn(chart)).length >= 3 ? drawn(chart) : undefined),
        10000,
      );
      t.ok(
        points.every(([x, y]) => x! >= 0 && x! <= 120 && y! >= 0 && y! <= 28),
        `${chart}: ${points.length} points inside the chart`,
      );
    }
    const incoming = await drawn('.chart-in');
    t.ok(
      incoming.some(([, y]) => y! < 20),
      'the incoming bitrate line rises above the bottom',
    );
    t.match(
      await page.textContent(`${card} .chart-in title`),
      /now \d+ kb\/s, highest \d+ kb\/s/,
      'its title tells the figures',
    );
    // The destination restarts: the push reconnects, and its charts mark when.
    t.equal(await page.$(`${card} .push .chart-bitrate line.mark`), null, 'no reconnect marked yet');
    await stage.nginx.restart();
    await waitFor(
      "a reconnect marked on the push's charts",
      async () =>
        (await page.$(`${card} .push .chart-bitrate line.mark`)) !== null &&
        (await page.$(`${card} .push .chart-lag line.mark`)) !== null,
      20000,
    );
    t.equal(await page.textContent(`${card} .push .reconnects`), '1', 'and counted');

    await page.click(`${card} .push .mute`);
    await waitFor(
      'the push to show muted',
      async () => (await page.textContent(`${card} .push .mute`)) === 'Unmute',
      5000,
    );
    t.equal((await find()).body[0].muted, true, 'the push is muted');

    await page.click(`${card} .snapshot`);
    await waitFor(
      'the snapshot',
      async () =>
        page.evaluate(
          (selector) => (document.querySelector(selector) as HTMLImageElement)?.naturalWidth ?? 0,
          `${card} .picture`,
        ),
      8000,
    );
    t.equal(
      await page.evaluate(
        (selector) => (document.querySelector(selector) as HTMLImageElement).naturalWidth,
        `${card} .picture`,
      ),
      1280,
      "the snapshot is the stream's picture",
    );
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'console.png'), fullPage: true });

    await page.click(`${card} .push .terminate`);
    await waitFor('the push row to go', async () => (await page.$(`${card} .push`)) === null, 8000);
    t.equal((await find()).status, 404, 'no push is left');
    await waitFor(
      'the RTMP stream to end',
      async () => !(await stage.nginx.streams()).some((s) => s.name === 'rtmp_cam'),
      5000,
    );
    t.match(
      await page.textContent('#events'),
      /transponder\.started cam → rtmp:\/\/127\.0\.0\.1:\d+\/live\/rtmp_cam[\s\S]*/,
      'the event log shows the push starting',
    );
    t.match(await page.textContent('#events'), /transponder\.stopped/, 'and stopping');
  },
);

t.test('the console records a stream, lists the recording, downloads it and deletes it', async (t) => {
  const page = stage.browser.page;
  const card = '.stream[data-name="cam"]';
  await page.click(`${card} .record`);
  await waitFor(
    'the recording listed as being written',
    async () => /record:\/\/|recording/.test((await page.textContent('#recordings').catch(() => '')) ?? ''),
    10000,
  );
  const push = (await find()).body.find((p: { rtmpUrl: string }) => p.rtmpUrl === 'record://');
  t.ok(push, 'a record:// push');
  await waitFor(
    'its row',
    async () =>
      (await page.textContent(`${card} .push[data-id="${push.mediaSessionId}"] .target`).catch(() => null)) ===
      'record://',
    8000,
  );
  await waitFor(
    '100 KB recorded',
    async () => {
      const response = await fetch(stage.gw.baseUrl + '/rest-api/recording/find_all', {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}` },
      });
      return response.ok && (await response.json())[0].size > 100_000;
    },
    15000,
  );
  await page.click(`${card} .push[data-id="${push.mediaSessionId}"] .terminate`);
  await waitFor(
    'the part finished in the list',
    async () => /finished/.test((await page.textContent('#recordings')) ?? ''),
    10000,
  );
  const fileName = (await page.textContent('#recordings tr td')) ?? '';
  t.match(fileName, /^cam-\d{8}T\d{6}Z-001\.mp4$/, 'the part, by name');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#recordings a')]);
  t.equal(download.suggestedFilename(), fileName, 'downloaded under its name');
  const saved = await readFile((await download.path())!);
  t.same(saved, await readFile(join(recordDir, fileName)), 'the file as recorded');
  await page.click('#recordings button');
  await waitFor('the list empty', async () => !(await page.isHidden('#noRecordings').catch(() => true)), 8000);
  const left = await fetch(stage.gw.baseUrl + '/rest-api/recording/find_all', {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
  });
  t.equal(left.status, 404, 'deleted at the gateway');
});

t.test(
  'the console watches a stream over WHEP: the picture plays, decoded in the browser',
  { skip: process.env.GATEWAY_WEBRTC_ENGINE === 'werift' ? 'WHEP needs webrtc_engine: mediasoup' : false },
  async (t) => {
    const page = stage.browser.page;
    const card = '.stream[data-name="cam"]';
    await page.click(`${card} .watch`);
    const state = (): Promise<unknown> =>
      page.evaluate(async (selector) => {
        const card = document.querySelector(selector) as unknown as { viewer?: { peerConnection: RTCPeerConnection } };
        const video = document.querySelector(`${selector} .player`) as HTMLVideoElement;
        const inbound: unknown[] = [];
        (await card.viewer?.peerConnection.getStats())?.forEach(
          (s) =>
            s.type === 'inbound-rtp' &&
            inbound.push({ kind: s.kind, packets: s.packetsReceived, frames: s.framesDecoded, codec: s.codecId }),
        );
        const sdp = card.viewer?.peerConnection.remoteDescription?.sdp
          .split('\r\n')
          .filter((l) => /^(m=|a=(rtpmap|ssrc|mid|sendonly|inactive))/.test(l));
        return {
          message: document.getElementById('message')?.textContent,
          connection: card.viewer?.peerConnection.connectionState,
          width: video.videoWidth,
          time: video.currentTime,
          hidden: video.hidden,
          tracks: (video.srcObject as MediaStream | null)
            ?.getTracks()
            .map((t) => `${t.kind}:${t.readyState}:${t.muted}`),
          inbound,
          sdp,
        };
      }, card);
    t.teardown(async () => t.comment(JSON.stringify(await state().catch(() => null))));
    await waitFor(
      'the picture playing',
      () =>
        page.evaluate((selector) => {
          const video = document.querySelector(selector) as HTMLVideoElement | null;
          return video !== null && !video.hidden && video.videoWidth === 1280 && video.currentTime > 0.5;
        }, `${card} .player`),
      20000,
    );
    const decoded = await page.evaluate(async (selector) => {
      const viewer = (document.querySelector(selector) as unknown as { viewer: { peerConnection: RTCPeerConnection } })
        .viewer;
      let frames = 0;
      (await viewer.peerConnection.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded;
      });
      return frames;
    }, card);
    t.ok(decoded > 10, `${decoded} frames decoded`);
    t.equal(await page.textContent(`${card} .watch`), 'Stop watching');
    await page.click(`${card} .watch`);
    await waitFor('the player put away', async () => page.isHidden(`${card} .player`), 5000);
  },
);

t.test(
  'the console lists a mixer with its inputs, changes its layout, shows its output live (WHEP), and ends it',
  async (t) => {
    const page = stage.browser.page;
    const post = async (path: string, body: unknown): Promise<{ status: number; body: any }> => {
      const response = await fetch(stage.gw.baseUrl + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    const guest = await SyntheticPublisher.publish(testFixture(), stage.gw.baseUrl, 'guest', { token: KEY });
    t.teardown(() => guest.stop());
    await waitFor('the guest publishing', () => stage.gw.publishers.get('guest')?.state === 'publishing', 10000);
    t.equal(
      (await post('/rest-api/mixer/startup', { uri: 'mixer://studio', layout: 'grid', width: 640, height: 360 }))
        .status,
      200,
    );
    t.teardown(() => post('/rest-api/mixer/terminate', { uri: 'mixer://studio' }));

    await page.goto(stage.gw.baseUrl + '/console');
    await waitFor('live updates', async () => (await page.textContent('#connection')) === 'Live updates', 5000);
    const card = '.stream[data-name="studio"]';
    await waitFor(
      "the mixer's stream with its mixer part",
      async () => page.isVisible(`${card} .mixer`).catch(() => false),
      10000,
    );
    t.equal(await page.textContent(`${card} .mixer-uri`), 'mixer://studio');
    await page.fill(`${card} .input-name`, 'guest');
    await page.click(`${card} .add-input button`);
    await waitFor(
      'the input listed as publishing',
      async () => /guest · publishing/.test((await page.textContent(`${card} .inputs`).catch(() => '')) ?? ''),
      10000,
    );
    t.match(
      (await post('/rest-api/mixer/find_all', {})).body,
      [{ uri: 'mixer://studio', inputs: [{ streamName: 'guest', publishing: true }] }],
      'added through the console',
    );

    await page.selectOption(`${card} .layout`, 'speaker');
    await waitFor(
      'the layout changed',
      async () => (await post('/rest-api/mixer/find_all', {})).body[0]?.layout === 'speaker',
      5000,
    );

    await page.click(`${card} .watch`);
    const size = await waitFor(
      "the mixer's output playing in the card (WHEP)",
      async () => {
        const [width, height] = await page.evaluate((selector) => {
          const video = document.querySelector(selector) as HTMLVideoElement;
          return [video.videoWidth, video.videoHeight];
        }, `${card} .player`);
        return width! > 0 ? `${width}x${height}` : undefined;
      },
      15000,
    );
    t.equal(size, '640x360', "the player shows the mixer's picture");

    await page.click(`${card} .mixer .inputs .input button`);
    await waitFor('the input removed', async () => (await page.$(`${card} .inputs .input`)) === null, 5000);
    await page.click(`${card} .end-mixer`);
    await waitFor("the mixer's card gone", async () => (await page.$(card)) === null, 8000);
    t.equal((await post('/rest-api/mixer/find_all', {})).status, 404, 'no mixer left');
  },
);

t.test(
  'an open console event stream gives a view at once and does not hold the gateway open when it closes',
  async (t) => {
    const response = await fetch(stage.gw.baseUrl + '/rest-api/console/events', {
      headers: { authorization: `Bearer ${KEY}` },
    });
    t.equal(response.status, 200);
    t.match(response.headers.get('content-type'), /^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    t.match(first.value, /^event: view\ndata: \{"at":"[^"]+","streams":\[/, 'a view at once');
    const closing = Date.now();
    await stage.gw.close();
    t.ok(Date.now() - closing < 3000, `the gateway closed in ${Date.now() - closing} ms`);
    let done = false;
    while (!done) done = (await reader.read()).done;
    t.pass('the event stream ended');
  },
);
