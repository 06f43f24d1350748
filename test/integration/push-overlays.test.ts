import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { colourLook, loadFixture } from '../../kit/fixture.js';
import { colourAt, lastKeyframe, looksLike } from '../../kit/pictures.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { ffmpegCount, startGateway } from '../helpers/gateway.js';
import { awaitPushState, keyframeCached } from '../helpers/pushes.js';

// The images a mixer lays over its picture, on a single stream's push: a red camera pushed to
// nginx-rtmp with a yellow logo at its top right, read back from what nginx-rtmp recorded, on the
// live picture and on the still picture that holds the broadcast while the publisher is away.

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
const run = promisify(execFile);
const MEDIA_TIMEOUT_MS = 2000;

t.test(
  'a push with an overlay: the logo where it was asked, over the live picture and the still; bad overlays refused naming the field',
  async (t) => {
    const media = await mkdtemp(join(tmpdir(), 'overlay-media-'));
    t.teardown(() => rm(media, { recursive: true, force: true }));
    await run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'color=c=0xffff00:s=64x64',
      '-frames:v',
      '1',
      join(media, 'logo.png'),
    ]);
    await writeFile(join(media, 'notes.txt'), 'not an image');
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const gw = await startGateway({
      media_dir: media,
      webrtc_media_timeout_ms: MEDIA_TIMEOUT_MS,
      rtmp_push_publisher_grace_ms: 60_000,
    });
    t.teardown(() => gw.close());
    const publisher = await SyntheticPublisher.publish(
      loadFixture(FIXTURES, colourLook('#ff0000', '640x480', 440)),
      gw.baseUrl,
      'cam',
    );
    t.teardown(() => publisher.stop());
    await keyframeCached(gw, 'cam');

    const start = (overlays: unknown): ReturnType<typeof gw.post> =>
      gw.post('/rest-api/push/startup', {
        streamName: 'cam',
        rtmpUrl: `${nginx.url()}/cam`,
        rtmpTransponderFullUrl: true,
        overlays,
      });
    t.match(
      await start([{ file: 'nope.png' }]),
      { status: 404, body: { field: 'overlays.0.file' } },
      'a file that is not there',
    );
    t.match(
      await start([{ file: 'notes.txt' }]),
      { status: 400, body: { message: /overlays.0.file: is not a PNG or JPEG image/ } },
      'a file that is no image',
    );
    t.match(
      await start([{ file: '../logo.png' }]),
      { status: 400, body: { message: /overlays.0.file: must be a plain file name/ } },
      'a path',
    );
    t.match(
      await start(Array(5).fill({ file: 'logo.png' })),
      { status: 400, body: { message: /overlays/ } },
      'more than four',
    );
    t.match(await start([{ file: 'logo.png', opacity: 2 }]), { status: 400, body: { message: /overlays.0.opacity/ } });
    t.equal(await ffmpegCount(), 0, 'nothing started for them');

    const push = await start([{ file: 'logo.png', x: 0.8, y: 0.05, width: 0.1 }]);
    t.equal(push.status, 200, JSON.stringify(push.body));
    t.match(push.body, { transcoding: true, state: 'running' }, 'an overlay makes the push transcode');
    const frameShows = async (what: string): Promise<void> => {
      let seen = '';
      await waitFor(
        what,
        async () => {
          const frame = await lastKeyframe(nginx.recording('cam')).catch(() => undefined);
          if (!frame) return false;
          const [logo, picture] = [colourAt(frame, 0.85, 0.11), colourAt(frame, 0.5, 0.5)];
          seen = JSON.stringify([logo, picture]);
          return looksLike(logo, '#ffff00') && looksLike(picture, '#ff0000');
        },
        20_000,
        500,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; last seen ${seen}`, { cause: error });
      });
    };
    await waitFor(
      '2 s recorded',
      async () => ((await probe(nginx.recording('cam')).catch(() => undefined))?.video.length ?? 0) >= 60,
    );
    await frameShows('the logo at the top right of the red picture');
    t.pass('the live picture carries the logo');

    // The publisher goes away: the still picture holds the broadcast, the logo over it.
    await publisher.vanish();
    await awaitPushState(gw, 'cam', 'standby', [], MEDIA_TIMEOUT_MS + 5000);
    const recorded = (await probe(nginx.recording('cam'))).video.length;
    await waitFor(
      '1 s of the still recorded',
      async () => (await probe(nginx.recording('cam'))).video.length >= recorded + 25,
    );
    await frameShows('the logo over the still picture');
    t.pass('the still picture carries it too');
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: push.body.mediaSessionId })).status, 200);
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
  },
);
