import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { colourLook, loadFixture } from '../../kit/fixture.js';
import {
  brightness,
  colourAt,
  decodePicture,
  lastKeyframe,
  looksLike,
  toneLevels,
  type Picture,
} from '../../kit/pictures.js';
import { nonMonotonic, probe, recordedFps, type ProbedPacket } from '../../kit/probe.js';
import { childPids, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { ffmpegCount, IN_WORKERS, startGateway, type TestGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import type { LifecycleEventType } from '../../src/core/lifecycle-events.js';
import type { WorkerPlane } from '../../src/plane/workers.js';

// A mixer made from two real WebRTC publishers (werift over WHIP): one red at 640x480 (4:3) with a
// 440 Hz tone, one blue at 1280x720 (16:9) with a 1000 Hz tone. Its output is a stream like any:
// pushed to nginx-rtmp and read back with ffprobe and ffmpeg, its layouts read from its snapshots.

const RED = '#ff0000';
const BLUE = '#0000ff';
const GREEN = '#00ff00';
const PLACEHOLDER = '#303030';
const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
const run = promisify(execFile);
/** The last seconds of a recording whose sound is measured (`toneLevels`). */
const TONE_WINDOW_S = 2;
/** The time of the last of `packets` (s), 0 for none. */
const lastTime = (packets: ProbedPacket[]): number => Number(packets.at(-1)?.pts_time ?? 0);

/** A media directory with a yellow square (PNG), a cyan backdrop (JPEG) and a file that is no image. */
async function mediaDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mixer-media-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const make = (source: string, file: string): Promise<unknown> =>
    run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      source,
      '-frames:v',
      '1',
      join(dir, file),
    ]);
  await make('color=c=0xffff00:s=64x64', 'logo.png');
  await make('color=c=0x00ffff:s=320x240', 'backdrop.jpg');
  await writeFile(join(dir, 'notes.txt'), 'not an image');
  return dir;
}

async function publishColour(
  t: Test,
  gw: TestGateway,
  name: string,
  colour: string,
  size: string,
  toneHz: number,
  audio = true,
  fps = 30,
): Promise<SyntheticPublisher> {
  const publisher = await SyntheticPublisher.publish(
    loadFixture(FIXTURES, colourLook(colour, size, toneHz, fps)),
    gw.baseUrl,
    name,
    { audio },
  );
  t.teardown(() => publisher.stop());
  await keyframeCached(gw, name);
  return publisher;
}

/** Decodes the mixer's latest keyframe (a snapshot of its stream). */
async function snapshot(gw: TestGateway, dir: string, stream: string): Promise<Picture> {
  const file = join(dir, `${stream}-${Date.now()}.jpg`);
  await writeFile(file, await gw.plane.snapshot(stream));
  return decodePicture(file);
}

/** Waits until a snapshot of `stream` has each colour at its point (fractions of the picture). */
async function waitForPicture(
  gw: TestGateway,
  dir: string,
  stream: string,
  what: string,
  expected: [number, number, string][],
): Promise<Picture> {
  let last = '';
  try {
    return await waitFor(
      what,
      async () => {
        const picture = await snapshot(gw, dir, stream).catch(() => undefined);
        if (!picture) return undefined;
        const seen = expected.map(([x, y]) => colourAt(picture, x, y));
        last = JSON.stringify(seen);
        return expected.every(([, , colour], i) => looksLike(seen[i]!, colour)) ? picture : undefined;
      },
      20_000,
      250,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen ${last}`, { cause: error });
  }
}

t.test(
  'a mixer of two publishers, pushed to nginx-rtmp: size, frame rate, both sounds, each picture in its slot, letterboxed',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mixer-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const records = await mkdtemp(join(tmpdir(), 'mixer-records-'));
    t.teardown(() => rm(records, { recursive: true, force: true }));
    const gw = await startGateway({
      webrtc_keyframe_interval_ms: 1000,
      media_dir: await mediaDir(t),
      record_dir: records,
      record_min_free_mb: 1,
    });
    t.teardown(() => gw.close());
    await publishColour(t, gw, 'red', RED, '640x480', 440);
    await publishColour(t, gw, 'blue', BLUE, '1280x720', 1000);

    const started = await gw.post('/rest-api/mixer/startup', {
      uri: 'mixer://show',
      layout: 'side-by-side',
      background: GREEN,
      overlays: [{ file: 'logo.png', x: 0.45, y: 0.05, width: 0.1 }],
    });
    t.equal(started.status, 200, JSON.stringify(started.body));
    t.match(started.body, {
      uri: 'mixer://show',
      localStreamName: 'show',
      width: 1280,
      height: 720,
      fps: 30,
      inputs: [],
    });
    for (const stream of ['red', 'blue'])
      t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://show', remoteStreamName: stream })).status, 200);
    await keyframeCached(gw, 'show');

    const push = await gw.post('/rest-api/push/startup', {
      streamName: 'show',
      rtmpUrl: `${nginx.url()}/show`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    await waitFor('the mixer at nginx-rtmp', async () => (await nginx.streams()).length === 1);
    // Recorded like any stream, beside the push.
    const record = await gw.post('/rest-api/push/startup', { streamName: 'show', rtmpUrl: 'record://' });
    t.equal(record.status, 200, JSON.stringify(record.body));
    // Side by side: each input in a 640x720 half, kept at its aspect ratio, black above and below.
    await waitForPicture(gw, dir, 'show', 'red left, blue right, the logo over them', [
      [0.25, 0.5, RED],
      [0.75, 0.5, BLUE],
      [0.25, 0.1, '#000000'],
      [0.75, 0.1, '#000000'],
      [0.5, 0.14, '#ffff00'],
    ]);
    const found = await gw.post('/rest-api/mixer/find_all', {});
    t.match(found.body, [
      {
        uri: 'mixer://show',
        inputs: [
          { streamName: 'red', slot: 0, publishing: true },
          { streamName: 'blue', slot: 1, publishing: true },
        ],
      },
    ]);
    t.ok((found.body as { frames: number }[])[0]!.frames > 30, 'it makes pictures');
    // The audio commands on a push of the mixer, as on any push.
    const pushId = (push.body as { mediaSessionId: string }).mediaSessionId;
    t.equal((await gw.post('/rest-api/push/mute', { mediaSessionId: pushId })).status, 200);
    const pushes = (await gw.post('/rest-api/push/find', { streamName: 'show' })).body as {
      mediaSessionId: string;
      muted: boolean;
    }[];
    t.match(
      pushes.find((p) => p.mediaSessionId === pushId),
      { muted: true },
      'muted',
    );
    t.equal((await gw.post('/rest-api/push/unmute', { mediaSessionId: pushId })).status, 200);
    // The sound measured at the end is recorded after the unmute: the sound in flight when it came
    // (ffmpeg's AAC, the link's buffer) may still be muted, hence a second more.
    const soundAtUnmute = lastTime((await probe(nginx.recording('show'))).audio);
    await waitFor('4 s recorded, the last seconds after the unmute', async () => {
      const recording = await probe(nginx.recording('show')).catch(() => undefined);
      return (
        recording && recording.video.length >= 120 && lastTime(recording.audio) > soundAtUnmute + TONE_WINDOW_S + 1
      );
    });
    t.equal(
      (
        await gw.post('/rest-api/push/terminate', {
          mediaSessionId: (push.body as { mediaSessionId: string }).mediaSessionId,
        })
      ).status,
      200,
    );
    t.equal(
      (
        await gw.post('/rest-api/push/terminate', {
          mediaSessionId: (record.body as { mediaSessionId: string }).mediaSessionId,
        })
      ).status,
      200,
    );
    const [part] = (await gw.post('/rest-api/recording/find_all', { streamName: 'show' })).body as {
      fileName: string;
      state: string;
    }[];
    t.match(part, { state: 'finished' }, 'the mixer recorded by a record:// push');
    const recorded = await probe(join(records, part!.fileName));
    t.match(
      recorded.streams.map((s) => `${s.codec_type} ${s.codec_name}${s.width ? ` ${s.width}x${s.height}` : ''}`).sort(),
      ['audio aac', 'video h264 1280x720'],
      'its picture and its sound in the recording',
    );

    const recording = await probe(nginx.recording('show'));
    const video = recording.streams.find((s) => s.codec_type === 'video');
    t.match(video, { codec_name: 'h264', width: 1280, height: 720 }, 'H.264 at the size asked');
    const fps = recordedFps(recording.video);
    t.ok(Math.abs(fps - 30) < 1.5, `30 fps (${fps})`);
    t.ok(
      recording.streams.some((s) => s.codec_type === 'audio'),
      'with sound',
    );
    const [low, high, absent] = await toneLevels(nginx.recording('show'), [440, 1000, 700], TONE_WINDOW_S);
    // Averaged over the last seconds: 0.019-0.069 a tone in clean runs, 0.000 for a tone that is not there.
    t.ok(low! > 0.01 && high! > 0.01, `both inputs are heard (440 Hz ${low!.toFixed(3)}, 1000 Hz ${high!.toFixed(3)})`);
    t.ok(absent! < low! / 5 && absent! < high! / 5, `and nothing else (700 Hz ${absent!.toFixed(3)})`);
    const frame = await lastKeyframe(nginx.recording('show'));
    t.ok(
      looksLike(colourAt(frame, 0.25, 0.5), RED) && looksLike(colourAt(frame, 0.75, 0.5), BLUE),
      'the recording shows them side by side',
    );

    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://show' })).status, 200);
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
    t.equal((await gw.post('/rest-api/mixer/find_all', {})).status, 404, 'no mixer left');
  },
);

t.test(
  'live changes keep one RTMP session with monotonic timestamps at 30 fps: layouts, a lost input, an input without sound, decoders replaced, a label, a removal',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mixer-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const gw = await startGateway({ webrtc_keyframe_interval_ms: 1000 });
    t.teardown(() => gw.close());
    await publishColour(t, gw, 'red', RED, '640x480', 440);
    const blue = await publishColour(t, gw, 'blue', BLUE, '1280x720', 1000);
    t.equal(
      (
        await gw.post('/rest-api/mixer/startup', {
          uri: 'mixer://show',
          layout: 'grid',
          background: GREEN,
          width: 640,
          height: 360,
        })
      ).status,
      200,
    );
    for (const stream of ['red', 'blue'])
      await gw.post('/rest-api/mixer/add', { uri: 'mixer://show', remoteStreamName: stream });
    await keyframeCached(gw, 'show');
    const push = await gw.post('/rest-api/push/startup', {
      streamName: 'show',
      rtmpUrl: `${nginx.url()}/show`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    const [session] = await waitFor('the mixer at nginx-rtmp', async () => {
      const streams = await nginx.streams();
      return streams.length === 1 ? streams : undefined;
    });

    // A grid of two: one row of two cells of 320x360, each picture letterboxed in its cell.
    await waitForPicture(gw, dir, 'show', 'grid', [
      [0.25, 0.5, RED],
      [0.75, 0.5, BLUE],
      [0.75, 0.1, '#000000'],
    ]);
    t.equal(
      (
        await gw.post('/rest-api/mixer/set_layout', {
          uri: 'mixer://show',
          layout: 'picture-in-picture',
          pip: { corner: 'top-right', size: 0.3 },
        })
      ).status,
      200,
    );
    await waitForPicture(gw, dir, 'show', 'picture-in-picture: red fills, blue inset top right', [
      [0.5, 0.5, RED],
      [0.83, 0.15, BLUE],
    ]);
    t.equal((await gw.post('/rest-api/mixer/set_layout', { uri: 'mixer://show', layout: 'speaker' })).status, 200);
    await waitForPicture(gw, dir, 'show', 'speaker: the first large above, the other below', [
      [0.5, 0.35, RED],
      [0.5, 0.88, BLUE],
    ]);
    // Red falls silent: blue, now the louder by far, takes the large slot once it has been so for 1.5 s.
    t.equal(
      (
        await gw.post('/rest-api/mixer/setAudioVideo', {
          uri: 'mixer://show',
          remoteStreamName: 'red',
          audioMuted: true,
        })
      ).status,
      200,
    );
    await waitForPicture(gw, dir, 'show', 'speaker: blue, the one heard, large above', [
      [0.5, 0.35, BLUE],
      [0.5, 0.88, RED],
    ]);
    t.equal(
      (
        await gw.post('/rest-api/mixer/setAudioVideo', {
          uri: 'mixer://show',
          remoteStreamName: 'red',
          audioMuted: false,
        })
      ).status,
      200,
    );

    // Blue's publisher goes: its slot shows the placeholder; it publishes again: blue is back.
    await gw.post('/rest-api/mixer/set_layout', { uri: 'mixer://show', layout: 'side-by-side' });
    await blue.stop();
    await waitForPicture(gw, dir, 'show', 'the placeholder where blue was', [
      [0.25, 0.5, RED],
      [0.75, 0.5, PLACEHOLDER],
    ]);
    t.match((await gw.post('/rest-api/mixer/find_all', {})).body, [
      { inputs: [{ publishing: true }, { streamName: 'blue', publishing: false }] },
    ]);
    await publishColour(t, gw, 'blue', BLUE, '1280x720', 1000);
    await waitForPicture(gw, dir, 'show', 'blue back in its slot', [
      [0.25, 0.5, RED],
      [0.75, 0.5, BLUE],
    ]);

    // A third input, added live, at 15 frames a second and with no sound: it is shown, and the others are still heard.
    await publishColour(t, gw, 'yellow', '#ffff00', '320x240', 700, false, 15);
    t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://show', remoteStreamName: 'yellow' })).status, 200);
    await waitForPicture(gw, dir, 'show', 'three side by side, yellow on the right', [
      [1 / 6, 0.5, RED],
      [0.5, 0.5, BLUE],
      [5 / 6, 0.5, '#ffff00'],
    ]);

    // The inputs' decoders killed (a stream one cannot decode ends it the same way): new ones take over.
    const decoders = async (): Promise<number[]> => {
      const ours = await childPids(process.pid, 'ffmpeg');
      const commandLine = (pid: number): string => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        } catch {
          return '';
        }
      };
      return ours.filter((pid) => commandLine(pid).includes('ivf -i pipe:0'));
    };
    const killed = await decoders();
    t.equal(killed.length, 3, 'a decoder for each input');
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    await waitFor('a new decoder for each', async () => {
      const now = await decoders();
      return now.length === 3 && now.every((pid) => !killed.includes(pid));
    });
    await waitForPicture(gw, dir, 'show', 'all still shown', [
      [1 / 6, 0.5, RED],
      [0.5, 0.5, BLUE],
      [5 / 6, 0.5, '#ffff00'],
    ]);

    // A label over red's picture: white text on a dark box at its bottom left, where the letterbox was black.
    const region = [0.04, 0.86, 0.23, 0.94] as const;
    t.ok(brightness(await snapshot(gw, dir, 'show'), ...region) < 20, 'no label yet');
    const labelled = await gw.post('/rest-api/mixer/set_stream_label', {
      uri: 'mixer://show',
      remoteStreamName: 'red',
      label: 'Host: Ada',
    });
    t.match(labelled.body, { inputs: [{ streamName: 'red', label: 'Host: Ada' }] });
    await waitFor(
      'the label drawn',
      async () => brightness(await snapshot(gw, dir, 'show'), ...region) > 30,
      20_000,
      250,
    );
    t.match(
      await gw.post('/rest-api/mixer/set_stream_label', {
        uri: 'mixer://show',
        remoteStreamName: 'red',
        label: 'two\nlines',
      }),
      { status: 400, body: { message: /label/ } },
    );

    for (const stream of ['blue', 'yellow'])
      t.equal((await gw.post('/rest-api/mixer/remove', { uri: 'mixer://show', remoteStreamName: stream })).status, 200);
    // How much sound was recorded when they left: the sound checked at the end comes after it.
    const soundAtRemoval = lastTime((await probe(nginx.recording('show'))).audio);
    await waitForPicture(gw, dir, 'show', 'red alone fills the picture', [
      [0.5, 0.5, RED],
      [0.1, 0.5, '#000000'],
    ]);

    // Nine inputs, the most: placeholders for streams that do not publish yet; a tenth is refused.
    t.equal((await gw.post('/rest-api/mixer/set_layout', { uri: 'mixer://show', layout: 'grid' })).status, 200);
    for (let i = 1; i <= 8; i++)
      t.equal(
        (
          await gw.post('/rest-api/mixer/add', {
            uri: 'mixer://show',
            remoteStreamName: `later${i}`,
            waitForStream: true,
          })
        ).status,
        200,
      );
    t.match(
      await gw.post('/rest-api/mixer/add', { uri: 'mixer://show', remoteStreamName: 'later9', waitForStream: true }),
      { status: 409, body: { field: 'remoteStreamName', message: /has its 9 inputs, the most a mixer takes/ } },
      'a tenth input',
    );
    await waitForPicture(gw, dir, 'show', 'a grid of nine: red, then placeholders', [
      [1 / 6, 1 / 6, RED],
      [0.5, 0.5, PLACEHOLDER],
      [5 / 6, 5 / 6, PLACEHOLDER],
    ]);

    // The last seconds of sound, checked below, all recorded after blue left.
    await waitFor(
      'the sound checked at the end recorded after the removal',
      async () => lastTime((await probe(nginx.recording('show'))).audio) > soundAtRemoval + TONE_WINDOW_S + 0.5,
    );

    // Through all of it, one connection to nginx-rtmp, and what it recorded is one stream at a constant rate.
    t.match(await nginx.streams(), [{ clientId: session!.clientId }], 'the same RTMP connection throughout');
    t.equal(
      (
        await gw.post('/rest-api/push/terminate', {
          mediaSessionId: (push.body as { mediaSessionId: string }).mediaSessionId,
        })
      ).status,
      200,
    );
    const recording = await probe(nginx.recording('show'));
    t.same(nonMonotonic(recording.video), [], 'video timestamps only go forward');
    t.same(nonMonotonic(recording.audio), [], 'and so do those of the sound');
    const fps = recordedFps(recording.video);
    t.ok(Math.abs(fps - 30) < 1.5, `30 fps over the whole session (${fps.toFixed(2)})`);
    const gaps = recording.video.slice(1).map((p, i) => Number(p.dts_time) - Number(recording.video[i]!.dts_time));
    t.ok(Math.max(...gaps) < 0.25, `no picture missing for long (longest gap ${Math.max(...gaps).toFixed(3)} s)`);
    // Its last seconds: red, the input left, is heard; blue, removed, is not.
    const [low, high] = await toneLevels(nginx.recording('show'), [440, 1000], TONE_WINDOW_S);
    t.ok(
      low! > 0.02 && high! < low! / 5,
      `red heard, blue gone with its input (440 Hz ${low!.toFixed(3)}, 1000 Hz ${high!.toFixed(3)})`,
    );
  },
);

t.test(
  'in worker threads (the default): inputs publishing in other workers than the mixer come to it, and come back after a loss',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mixer-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const gw = await startGateway({ ...IN_WORKERS, webrtc_keyframe_interval_ms: 1000 });
    t.teardown(() => gw.close());
    // Each publish goes to the worker with the fewest streams: with two workers, one each.
    await publishColour(t, gw, 'red', RED, '640x480', 440);
    const blue = await publishColour(t, gw, 'blue', BLUE, '1280x720', 1000);
    const plane = gw.plane as WorkerPlane;
    if (availableParallelism() > 1)
      t.not(plane.threadOf('red'), plane.threadOf('blue'), 'the two streams publish in different workers');
    t.equal(
      (
        await gw.post('/rest-api/mixer/startup', {
          uri: 'mixer://show',
          layout: 'side-by-side',
          width: 640,
          height: 360,
        })
      ).status,
      200,
    );
    for (const stream of ['red', 'blue'])
      t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://show', remoteStreamName: stream })).status, 200);
    await keyframeCached(gw, 'show');
    await waitForPicture(gw, dir, 'show', 'both inputs, wherever they publish', [
      [0.25, 0.5, RED],
      [0.75, 0.5, BLUE],
    ]);
    await blue.stop();
    await waitForPicture(gw, dir, 'show', 'the placeholder where blue was', [[0.75, 0.5, PLACEHOLDER]]);
    await publishColour(t, gw, 'blue', BLUE, '1280x720', 1000);
    await waitForPicture(gw, dir, 'show', 'blue back', [
      [0.25, 0.5, RED],
      [0.75, 0.5, BLUE],
    ]);
    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://show' })).status, 200);
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
  },
);

t.test(
  'bad input: a clear error naming the field, and nothing left running; metrics and webhooks tell of mixers',
  async (t) => {
    const hooks = await WebhookReceiver.start('mixer-webhook-secret');
    t.teardown(() => hooks.stop());
    const webhook = {
      id: 'app',
      url: hooks.url,
      secret: 'mixer-webhook-secret',
      events: ['mixer.started', 'mixer.input_added', 'mixer.ended'] as LifecycleEventType[],
      timeout_ms: 2000,
      max_attempts: 3,
      queue_limit: 100,
    };
    const gw = await startGateway({ limit_mixers: 2, webhooks: [webhook], media_dir: await mediaDir(t) });
    t.teardown(() => gw.close());
    await publishColour(t, gw, 'red', RED, '640x480', 440);
    const post = (path: string, body: unknown): ReturnType<TestGateway['post']> =>
      gw.post(`/rest-api/mixer/${path}`, body);

    t.match(
      await post('startup', { uri: 'show' }),
      { status: 400, body: { message: /uri/ } },
      'a uri that is not mixer://',
    );
    t.match(
      await post('startup', { uri: 'mixer://a', layout: 'carousel' }),
      { status: 400, body: { message: /layout/ } },
      'an unknown layout',
    );
    t.match(
      await post('startup', { uri: 'mixer://a', width: 641 }),
      { status: 400, body: { message: /width/ } },
      'an odd width',
    );
    t.match(
      await post('startup', { uri: 'mixer://a', background: 'green' }),
      { status: 404, body: { field: 'background' } },
      'a background neither #rrggbb nor a file',
    );
    t.match(await post('startup', { uri: 'mixer://a', background: 'notes.txt' }), {
      status: 400,
      body: { message: /background: is not a PNG or JPEG image/ },
    });
    t.match(
      await post('startup', { uri: 'mixer://a', overlays: [{ file: 'nope.png' }] }),
      { status: 404, body: { field: 'overlays.0.file' } },
      'an overlay file that is missing',
    );
    t.match(await post('startup', { uri: 'mixer://a', watermark: 'notes.txt' }), {
      status: 400,
      body: { message: /watermark: is not a PNG or JPEG image/ },
    });
    t.match(await post('startup', { uri: 'mixer://a', overlays: [{ file: '../logo.png' }] }), {
      status: 400,
      body: { message: /overlays.0.file: must be a plain file name/ },
    });
    t.match(
      await post('startup', { uri: 'mixer://a', hasVideo: false, hasAudio: false }),
      { status: 400, body: { field: 'hasAudio' } },
      'neither picture nor sound',
    );
    t.match(
      await post('startup', { uri: 'mixer://a', localStreamName: 'red' }),
      { status: 409, body: { message: /already publishing/ } },
      'an output named as a stream that publishes',
    );
    t.equal(await ffmpegCount(), 0, 'nothing started for them');

    t.equal(
      (await post('startup', { uri: 'mixer://a', background: 'backdrop.jpg', width: 320, height: 180 })).status,
      200,
    );
    t.equal((await post('startup', { uri: 'mixer://b' })).status, 200);
    t.match(await post('startup', { uri: 'mixer://a' }), {
      status: 409,
      body: { message: /uri: mixer:\/\/a already runs/ },
    });
    t.match(await post('startup', { uri: 'mixer://c' }), { status: 503, body: { message: /limit_mixers/ } });

    t.match(await post('add', { uri: 'mixer://nope', remoteStreamName: 'red' }), {
      status: 404,
      body: { message: /uri: no mixer/ },
    });
    t.match(await post('add', { uri: 'mixer://a', remoteStreamName: 'nobody' }), {
      status: 404,
      body: { message: /remoteStreamName: stream nobody is not publishing/ },
    });
    t.match(
      await post('add', { uri: 'mixer://a', remoteStreamName: 'a' }),
      { status: 400, body: { message: /remoteStreamName/ } },
      'a mixer added to itself',
    );
    t.equal((await post('add', { uri: 'mixer://b', remoteStreamName: 'a' })).status, 200, 'a mixer in another');
    t.match(
      await post('add', { uri: 'mixer://a', remoteStreamName: 'b' }),
      { status: 400, body: { message: /remoteStreamName: b is made from this mixer's own output/ } },
      'a mixer in itself through another',
    );
    t.equal((await post('add', { uri: 'mixer://a', remoteStreamName: 'red' })).status, 200);
    t.match(await post('add', { uri: 'mixer://a', remoteStreamName: 'red' }), {
      status: 409,
      body: { message: /already an input/ },
    });
    t.match(await post('add', { uri: 'mixer://a', remoteStreamName: 'red', slot: 9 }), {
      status: 400,
      body: { message: /slot/ },
    });
    t.match(await post('remove', { uri: 'mixer://a', remoteStreamName: 'blue' }), {
      status: 404,
      body: { message: /remoteStreamName: blue is not an input/ },
    });
    t.match(await post('setAudioVideo', { uri: 'mixer://a', remoteStreamName: 'red', volume: 5 }), {
      status: 400,
      body: { message: /volume/ },
    });
    t.equal(
      (await post('setAudioVideo', { uri: 'mixer://a', remoteStreamName: 'red', volume: 0.5, audioMuted: true }))
        .status,
      200,
    );
    t.match((await post('find_all', {})).body, [
      { uri: 'mixer://a', inputs: [{ streamName: 'red', volume: 0.5, audioMuted: true }] },
      { uri: 'mixer://b' },
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'mixer-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await keyframeCached(gw, 'a');
    const backdrop = await snapshot(gw, dir, 'a');
    t.ok(looksLike(colourAt(backdrop, 0.9, 0.1), '#00ffff'), 'a background image fills the picture where no input is');
    const metrics = await (await fetch(`${gw.baseUrl}/metrics`)).text();
    t.match(
      metrics,
      /^gateway_mixer_inputs\{mixer="mixer:\/\/a",stream="a"\} 1$/m,
      'metrics: the inputs of each mixer',
    );
    t.match(
      metrics,
      /^gateway_mixer_frames_total\{mixer="mixer:\/\/b",stream="b"\} [1-9]/m,
      'and the pictures it made',
    );

    for (const uri of ['mixer://b', 'mixer://a']) t.equal((await post('terminate', { uri })).status, 200);
    t.match(await post('terminate', { uri: 'mixer://a' }), { status: 404, body: { message: /uri: no mixer/ } });
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
    t.same(
      (await gw.plane.streams()).map((s) => s.name),
      ['red'],
      "the mixers' streams ended with them",
    );
    const told = await waitFor('the webhooks of both mixers ending', () => {
      const events = hooks.received.map((h) => h.body as { type: string; data: Record<string, string> });
      return events.filter((e) => e.type === 'mixer.ended').length === 2 ? events : undefined;
    });
    t.match(
      told.map((e) => `${e.type} ${e.data.mixer} ${e.data.input ?? ''}`.trim()),
      [
        'mixer.started mixer://a',
        'mixer.started mixer://b',
        'mixer.input_added mixer://b a',
        'mixer.input_added mixer://a red',
        'mixer.ended mixer://b',
        'mixer.ended mixer://a',
      ],
      'webhooks: started, inputs added, ended',
    );
  },
);

t.test(
  'from the SDK: a publisher whose token allows the mixer starts it and adds its own stream; other tokens are refused; the mixer ends with the session',
  async (t) => {
    const HOST_KEY = 'host-publish-key-0123456789abcdef';
    const GUEST_KEY = 'guest-publish-key-0123456789abcdef';
    const gw = await startGateway({
      publish_keys: [
        {
          id: 'host',
          secret: HOST_KEY,
          streams: ['host', 'show', 'stage'],
          destinations: 'none',
          view: false,
          mixers: ['show', 'stage'],
        },
        { id: 'guest', secret: GUEST_KEY, streams: ['guest'], destinations: 'none', view: false, mixers: [] },
      ],
    });
    t.teardown(() => gw.close());
    const sdkPublish = async (name: string, colour: string, token: string): Promise<SyntheticPublisher> => {
      const publisher = await SyntheticPublisher.publish(
        loadFixture(FIXTURES, colourLook(colour, '640x480', 440)),
        gw.baseUrl,
        name,
        { sdk: { token } },
      );
      t.teardown(() => publisher.stop());
      await keyframeCached(gw, name);
      return publisher;
    };
    /** Sends an SDK message and waits for the answer to it (a `mixer`, or an `error`). */
    const ask = async (
      publisher: SyntheticPublisher,
      message: Record<string, unknown>,
    ): Promise<Record<string, unknown>> => {
      publisher.signal(message);
      return waitFor(`the answer to ${String(message.requestId)}`, () =>
        publisher.messages.find((m) => m.requestId === message.requestId),
      );
    };
    const host = await sdkPublish('host', RED, HOST_KEY);
    const guest = await sdkPublish('guest', BLUE, GUEST_KEY);

    t.match(
      await ask(guest, { type: 'startMixer', requestId: 's1', mixer: { uri: 'mixer://guest' } }),
      { type: 'error', code: 'forbidden', field: 'mixer', message: /mixer: the token does not allow mixer guest/ },
      'a token that does not name the mixer may not start it',
    );
    t.match(
      await ask(guest, { type: 'startMixer', requestId: 's0', mixer: { uri: 'mixer://show' } }),
      { type: 'error', code: 'forbidden', field: 'token', message: /does not allow publishing stream show/ },
      "nor one that may not publish the mixer's stream",
    );
    t.match(
      await ask(host, { type: 'startMixer', requestId: 's2', mixer: { uri: 'mixer://show', layout: 'carousel' } }),
      { type: 'error', code: 'invalid_request', field: 'mixer.layout' },
      'a bad field is named',
    );
    t.match(
      await ask(host, {
        type: 'startMixer',
        requestId: 's3',
        mixer: { uri: 'mixer://show', layout: 'side-by-side', width: 640, height: 360 },
      }),
      { type: 'mixer', mixer: { uri: 'mixer://show', localStreamName: 'show', inputs: [] } },
      'a token that allows it starts it',
    );
    t.match(await ask(host, { type: 'joinMixer', requestId: 'j1', name: 'host', uri: 'mixer://show', label: 'Host' }), {
      type: 'mixer',
      mixer: { inputs: [{ streamName: 'host', label: 'Host' }] },
    });
    t.match(
      await ask(guest, { type: 'joinMixer', requestId: 'j2', name: 'guest', uri: 'mixer://show' }),
      { type: 'error', code: 'forbidden', field: 'mixer' },
      'a stream whose token does not name the mixer is not added to it',
    );
    t.match(
      await ask(host, { type: 'joinMixer', requestId: 'j3', name: 'guest', uri: 'mixer://show' }),
      { type: 'error', code: 'not_found', field: 'name' },
      'nor is a stream another session publishes',
    );
    // The backend adds the guest with its control access, as an integrator would.
    t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://show', remoteStreamName: 'guest' })).status, 200);
    const dir = await mkdtemp(join(tmpdir(), 'mixer-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await keyframeCached(gw, 'show');
    await waitForPicture(gw, dir, 'show', 'host left, guest right', [
      [0.25, 0.5, RED],
      [0.75, 0.5, BLUE],
    ]);
    t.match(await ask(host, { type: 'leaveMixer', requestId: 'l1', name: 'host', uri: 'mixer://show' }), {
      type: 'mixer',
      mixer: { inputs: [{ streamName: 'guest' }] },
    });

    // A second mixer of the session is ended over REST and started again there: it is no longer the session's.
    t.match(await ask(host, { type: 'startMixer', requestId: 's4', mixer: { uri: 'mixer://stage' } }), {
      type: 'mixer',
      mixer: { uri: 'mixer://stage' },
    });
    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://stage' })).status, 200);
    t.equal((await gw.post('/rest-api/mixer/startup', { uri: 'mixer://stage' })).status, 200);

    // The page that started the mixers goes away: the mixer it started ends with its session, the one started since stays.
    await host.vanish();
    const left = await waitFor('the mixer ended with the session', async () => {
      const mixers = (await gw.post('/rest-api/mixer/find_all', {})).body as { uri: string }[];
      return mixers.some((m) => m.uri === 'mixer://show') ? undefined : mixers;
    });
    t.same(
      left.map((m) => m.uri),
      ['mixer://stage'],
      'the mixer started again over REST under the URI of one of the session goes on',
    );
    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://stage' })).status, 200);
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
  },
);
