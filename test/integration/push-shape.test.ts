import { join } from 'node:path';
import t from 'tap';
import { loadFixture } from '../../kit/fixture.js';
import { colourAt, lastKeyframe, looksLike } from '../../kit/pictures.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { ffmpegCount, startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';

// A landscape camera pushed at once as a vertical centre crop and as a vertical picture fitted on
// its own blurred copy, to nginx-rtmp: what arrived is probed and decoded. The camera shows three
// upright bands, red, green (the centre third) and blue, so each picture shows which part it kept.

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
const BANDS = {
  tag: 'bands-1280x720',
  picture:
    'color=c=0xff0000:s=1280x720:r=30:d=10,drawbox=x=426:y=0:w=428:h=720:color=0x00ff00:t=fill,drawbox=x=854:y=0:w=426:h=720:color=0x0000ff:t=fill',
  toneHz: 440,
};

t.test(
  'YouTube Shorts (a 9:16 centre crop) and a 9:16 fit on blur of one landscape camera: 720x1280 each, showing what was asked',
  async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const gw = await startGateway({});
    t.teardown(() => gw.close());
    const publisher = await SyntheticPublisher.publish(loadFixture(FIXTURES, BANDS), gw.baseUrl, 'wide');
    t.teardown(() => publisher.stop());
    await keyframeCached(gw, 'wide');

    const start = (stream: string, fields: Record<string, unknown>): ReturnType<typeof gw.post> =>
      gw.post('/rest-api/push/startup', {
        streamName: 'wide',
        rtmpUrl: `${nginx.url()}/${stream}`,
        rtmpTransponderFullUrl: true,
        ...fields,
      });
    t.match(
      await start('bad', { aspect: '9:16', width: 720 }),
      { status: 400, body: { field: 'width' } },
      'width with aspect',
    );
    t.match(await start('bad', { crop: 'left' }), { status: 400, body: { field: 'crop' } }, 'crop without aspect');
    t.match(
      await start('bad', { platform: 'facebook' }),
      { status: 400, body: { field: 'rtmpUrl', message: /facebook takes RTMPS only/ } },
      'Facebook over plain RTMP',
    );
    const recognised = await gw.post('/rest-api/push/startup', {
      streamName: 'wide',
      rtmpUrl: 'rtmp://live-api-s.facebook.com/rtmp/key',
      rtmpTransponderFullUrl: true,
    });
    t.match(
      recognised,
      { status: 400, body: { field: 'rtmpUrl' } },
      'recognised from its host, refused before any lookup',
    );
    t.equal(await ffmpegCount(), 0, 'nothing started for them');

    // YouTube Shorts named: a 9:16 picture, the centre of the camera's.
    const crop = await start('crop', { platform: 'youtube-shorts' });
    t.equal(crop.status, 200, JSON.stringify(crop.body));
    const fit = await start('fit', { aspect: '9:16', fit: 'blur' });
    t.equal(fit.status, 200, JSON.stringify(fit.body));
    t.match(
      crop.body,
      { transcoding: true, aspect: '9:16', platform: 'youtube-shorts' },
      'find tells the shape and the platform',
    );

    for (const stream of ['crop', 'fit']) {
      await waitFor(
        `2 s of ${stream} recorded`,
        async () => ((await probe(nginx.recording(stream)).catch(() => undefined))?.video.length ?? 0) >= 60,
        30_000,
        250,
      );
      const { streams } = await probe(nginx.recording(stream));
      t.match(
        streams.find((s) => s.codec_type === 'video'),
        { codec_name: 'h264', width: 720, height: 1280 },
        `${stream}: H.264 at 720x1280`,
      );
    }
    const found = (await gw.post('/rest-api/push/find', { streamName: 'wide' })).body as {
      aspect?: string;
      width: number;
      height: number;
    }[];
    t.same(
      found.map((push) => [push.aspect, push.width, push.height]),
      [
        ['9:16', 720, 1280],
        ['9:16', 720, 1280],
      ],
      'find shows the size sent',
    );

    const cropped = await lastKeyframe(nginx.recording('crop'));
    for (const x of [0.03, 0.5, 0.97]) {
      t.ok(
        looksLike(colourAt(cropped, x, 0.5), '#00ff00'),
        `the centre band across the crop at ${x}: ${colourAt(cropped, x, 0.5).join()}`,
      );
    }
    const fitted = await lastKeyframe(nginx.recording('fit'));
    const row = [0.1, 0.5, 0.9].map((x) => colourAt(fitted, x, 0.5));
    t.ok(
      looksLike(row[0]!, '#ff0000') && looksLike(row[1]!, '#00ff00') && looksLike(row[2]!, '#0000ff'),
      `the whole camera across the middle: ${JSON.stringify(row)}`,
    );
    const above = colourAt(fitted, 0.5, 0.1);
    t.ok(above[1] > 100, `its blurred centre above it: ${above.join()}`);

    for (const push of [crop, fit])
      t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: push.body.mediaSessionId })).status, 200);
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
  },
);
