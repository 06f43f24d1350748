import t from 'tap';
import { brightness, colourAt, lastKeyframe } from '../../kit/pictures.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { startGateway } from '../helpers/gateway.js';
import { TestBrowser } from '../../kit/browser.js';

// One Chromium camera live at once at three RTMP servers, as the SDK publishes it when a
// destination names a layer (three simulcast layers of H.264): the top layer passed through to
// one, a 9:16 centre crop transcoded for another, the low layer passed through to the third.

t.test(
  'the SDK: a 1280x720 passthrough, a 720x1280 centre crop and the low simulcast layer, at three RTMP servers',
  async (t) => {
    const servers = await Promise.all([NginxRtmp.start(), NginxRtmp.start(), NginxRtmp.start()]);
    t.teardown(() => Promise.all(servers.map((server) => server.stop())));
    const gw = await startGateway({});
    t.teardown(() => gw.close());
    const browser = await TestBrowser.launch();
    t.teardown(() => browser.close());
    const [landscape, vertical, low] = servers as [NginxRtmp, NginxRtmp, NginxRtmp];

    await browser.page.goto(`${gw.baseUrl}/health`);
    const destinations = [
      { id: 'landscape', rtmpUrl: `${landscape.url()}/landscape`, rtmpTransponderFullUrl: true },
      { id: 'vertical', rtmpUrl: `${vertical.url()}/vertical`, rtmpTransponderFullUrl: true, aspect: '9:16' },
      { id: 'low', rtmpUrl: `${low.url()}/low`, rtmpTransponderFullUrl: true, layer: 'low' },
    ];
    const published = await browser.publishThroughSdk(gw.baseUrl, { name: 'show', destinations });
    t.equal(published, 'PUBLISHING');

    const files = {
      landscape: landscape.recording('landscape'),
      vertical: vertical.recording('vertical'),
      low: low.recording('low'),
    };
    for (const [name, file] of Object.entries(files)) {
      await waitFor(
        `2 s of ${name} recorded`,
        async () => ((await probe(file).catch(() => undefined))?.video.length ?? 0) >= 40,
        30_000,
        250,
      );
    }
    // A layer the browser pauses for a moment on a busy machine holds its push in standby meanwhile.
    const pushes = await waitFor(
      'the three pushes running',
      async () => {
        const found = (await gw.post('/rest-api/push/find', { streamName: 'show' })).body as Array<
          Record<string, unknown>
        >;
        return found.length === 3 && found.every((p) => p.state === 'running') ? found : undefined;
      },
      30_000,
      250,
    );
    const byHost = (server: NginxRtmp): Record<string, unknown> | undefined =>
      pushes.find((p) => String(p.rtmpUrl).includes(`:${server.rtmpPort}/`));
    t.match(
      byHost(landscape),
      { transcoding: false, layer: 'high', width: 1280, height: 720, resolutionChanges: 0 },
      'landscape: the top layer, passed through',
    );
    t.match(
      byHost(vertical),
      { transcoding: true, aspect: '9:16', width: 720, height: 1280, resolutionChanges: 0 },
      'vertical: transcoded to 9:16',
    );
    t.match(
      byHost(low),
      { transcoding: false, layer: 'low', width: 320, height: 180, resolutionChanges: 0 },
      'low: the low layer, passed through',
    );

    for (const [name, file, width, height] of [
      ['landscape', files.landscape, 1280, 720],
      ['vertical', files.vertical, 720, 1280],
      ['low', files.low, 320, 180],
    ] as const) {
      const video = (await probe(file)).streams.find((s) => s.codec_type === 'video');
      t.match(video, { codec_name: 'h264', width, height }, `${name}: H.264 at ${width}x${height} (ffprobe)`);
      const picture = await lastKeyframe(file);
      t.match(picture, { width, height }, `${name}: a frame decoded at ${width}x${height}`);
      const samples = [0.2, 0.5, 0.8].flatMap((x) => [0.2, 0.5, 0.8].map((y) => colourAt(picture, x, y)));
      const spread = Math.max(...samples.flat()) - Math.min(...samples.flat());
      t.ok(
        brightness(picture, 0, 0, 1, 1) > 20 && spread > 30,
        `${name}: the camera's picture, not a blank one (spread ${spread})`,
      );
    }
    await browser.page.evaluate(() => (window as any).sdkStream.stop());
    await waitFor(
      'every push ended',
      async () => (await gw.post('/rest-api/push/find_all', {})).status === 404,
      15_000,
    );
  },
);
