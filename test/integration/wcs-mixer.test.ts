import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { colourLook, loadFixture } from '../../kit/fixture.js';
import { toneLevels } from '../../kit/pictures.js';
import { probe, recordedFps } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { ffmpegCount, startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';

// Web Call Server's mixer calls as its documentation writes them, field for field, strings where
// it writes strings: the "Stream mixer" page of WCS 5.2 (docs.flashphoner.com/display/WCS52EN/Stream+mixer),
// its REST table (/mixer/startup, /mixer/add, /mixer/remove, /mixer/find_all, /mixer/terminate) and
// its "Mixer configuration while creating the instance using REST API" example (build 5.2.872);
// the rooms of "Real-time stream mixer with MCU functions" (docs.flashphoner.com/display/WCS52EN/
// Real-time+stream+mixer+with+MCU+functions): `mixer_auto_start`, streams named `user1#room1`.

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
const run = promisify(execFile);

t.test(
  "Web Call Server's own mixer bodies start, fill, list, empty and end a mixer pushed to nginx-rtmp",
  async (t) => {
    const media = await mkdtemp(join(tmpdir(), 'wcs-media-'));
    t.teardown(() => rm(media, { recursive: true, force: true }));
    // The documented body names a watermark and a background of the server's media folder.
    for (const [source, file] of [
      ['color=c=0xffff00:s=64x64', 'watermark.png'],
      ['color=c=0x00ffff:s=320x240', 'background.png'],
    ]) {
      await run('ffmpeg', [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        source!,
        '-frames:v',
        '1',
        join(media, file!),
      ]);
    }
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const logLines: string[] = [];
    const gw = await startGateway({ log_level: 'warn', webrtc_keyframe_interval_ms: 1000, media_dir: media }, logLines);
    t.teardown(() => gw.close());
    const publishers = await Promise.all(
      [
        ['stream1', '#ff0000', 440],
        ['stream2', '#0000ff', 1000],
      ].map(async ([name, colour, tone]) => {
        const look = colourLook(colour as string, '640x360', tone as number, 30);
        const publisher = await SyntheticPublisher.publish(loadFixture(FIXTURES, look), gw.baseUrl, name as string);
        t.teardown(() => publisher.stop());
        await keyframeCached(gw, name as string);
        return publisher;
      }),
    );
    t.equal(publishers.length, 2);

    const startup = await gw.post('/rest-api/mixer/startup', {
      uri: 'mixer://mixer1',
      localStreamName: 'stream3',
      hasVideo: 'true',
      hasAudio: 'true',
      watermark: 'watermark.png',
      background: 'background.png',
      mixerLayoutClass: 'com.flashphoner.mixerlayout.TestLayout',
    });
    t.equal(startup.status, 200, JSON.stringify(startup.body));
    t.match(startup.body, { uri: 'mixer://mixer1', localStreamName: 'stream3', layout: 'grid', hasAudio: true });
    t.ok(
      logLines.some(
        (line) =>
          line.includes('mixerLayoutClass names no layout') && line.includes('com.flashphoner.mixerlayout.TestLayout'),
      ),
      'a layout class it cannot tell is logged, and the grid used',
    );

    const added = await gw.post('/rest-api/mixer/add', {
      uri: 'mixer://mixer1',
      remoteStreamName: 'stream1',
      hasVideo: 'true',
      hasAudio: 'true',
      streamLabel: 'John Doe',
      avatar: 'https://mystorage/storage/avatar.png',
      videoPositionId: 'speaker',
    });
    t.equal(added.status, 200, JSON.stringify(added.body));
    t.match(added.body, { inputs: [{ streamName: 'stream1', label: 'John Doe' }] }, 'streamLabel is the label');
    t.ok(
      logLines.some(
        (line) => line.includes('taken, not used') && line.includes('avatar') && line.includes('videoPositionId'),
      ),
      'avatar and videoPositionId are logged as not used',
    );
    t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://mixer1', remoteStreamName: 'stream2' })).status, 200);

    await keyframeCached(gw, 'stream3');
    const push = await gw.post('/rest-api/push/startup', {
      streamName: 'stream3',
      rtmpUrl: `${nginx.url()}/stream3`,
      rtmpTransponderFullUrl: 'true',
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    await waitFor('2 s of the mixer at nginx-rtmp', async () => {
      const recording = await probe(nginx.recording('stream3')).catch(() => undefined);
      return recording && recording.video.length >= 60 && recording.audio.length > 0;
    });
    const arrived = await probe(nginx.recording('stream3'));
    t.match(
      arrived.streams.map((s) => `${s.codec_type} ${s.codec_name}${s.width ? ` ${s.width}x${s.height}` : ''}`).sort(),
      ['audio aac', 'video h264 1280x720'],
      'H.264 at the default size, and AAC',
    );

    // find_all with Web Call Server's fields: the mixer's media session is its stream's, its inputs' are theirs.
    const ids = new Map<string, string>();
    for (const name of ['stream1', 'stream2', 'stream3']) {
      const found = await gw.post('/rest-api/stream/find', { name });
      ids.set(name, (found.body as { id: string }[])[0]!.id);
    }
    const listed = await gw.post('/rest-api/mixer/find_all', {});
    t.equal(listed.status, 200);
    t.match(listed.body, [
      {
        localMediaSessionId: ids.get('stream3'),
        remoteMediaSessionId: null,
        localStreamName: 'stream3',
        remoteStreamName: null,
        uri: 'mixer://mixer1',
        status: 'PROCESSED_LOCAL',
        hasAudio: true,
        hasVideo: true,
      },
    ]);
    t.same(
      [...(listed.body as { mediaSessions: string[] }[])[0]!.mediaSessions].sort(),
      [ids.get('stream1'), ids.get('stream2')].sort(),
      'mediaSessions: the inputs',
    );

    t.equal(
      (await gw.post('/rest-api/mixer/remove', { uri: 'mixer://mixer1', remoteStreamName: 'stream1' })).status,
      200,
    );
    const afterRemove = (await gw.post('/rest-api/mixer/find_all', {})).body as { mediaSessions: string[] }[];
    t.same(afterRemove[0]!.mediaSessions, [ids.get('stream2')], 'the removed input is no longer listed');
    t.equal(
      (
        await gw.post('/rest-api/push/terminate', {
          mediaSessionId: (push.body as { mediaSessionId: string }).mediaSessionId,
        })
      ).status,
      200,
    );
    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://mixer1' })).status, 200);
    t.equal((await gw.post('/rest-api/mixer/find_all', {})).status, 404, 'none left');

    // The size, rate and bitrate by Web Call Server's names, numbers as JSON's.
    const sized = await gw.post('/rest-api/mixer/startup', {
      uri: 'mixer://mixer1',
      localStreamName: 'stream3',
      mixerVideoWidth: 640,
      mixerVideoHeight: 360,
      mixerVideoFps: 24,
      mixerVideoBitrateKbps: 500,
    });
    t.equal(sized.status, 200, JSON.stringify(sized.body));
    t.match(sized.body, { width: 640, height: 360, fps: 24 });
    t.equal((await gw.post('/rest-api/mixer/add', { uri: 'mixer://mixer1', remoteStreamName: 'stream2' })).status, 200);
    await keyframeCached(gw, 'stream3');
    const second = await gw.post('/rest-api/push/startup', {
      streamName: 'stream3',
      rtmpUrl: `${nginx.url()}/sized`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(second.status, 200, JSON.stringify(second.body));
    await waitFor('2 s of the sized mixer at nginx-rtmp', async () => {
      const recording = await probe(nginx.recording('sized')).catch(() => undefined);
      return recording && recording.video.length >= 48;
    });
    const sizedArrived = await probe(nginx.recording('sized'));
    t.match(
      sizedArrived.streams.find((s) => s.codec_type === 'video'),
      { width: 640, height: 360 },
      '640x360 arrived',
    );
    const fps = recordedFps(sizedArrived.video);
    t.ok(fps > 21 && fps < 27, `about 24 frames a second arrived (${fps.toFixed(1)})`);
    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://mixer1' })).status, 200);
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
  },
);

t.test(
  'an audio-only mixer ("hasVideo": "false") mixes its inputs\' sound, decodes no picture, and arrives as AAC alone',
  async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const gw = await startGateway({ webrtc_keyframe_interval_ms: 1000 });
    t.teardown(() => gw.close());
    for (const [name, tone] of [
      ['voice1', 440],
      ['voice2', 1000],
    ] as const) {
      const publisher = await SyntheticPublisher.publish(
        loadFixture(FIXTURES, colourLook('#808080', '320x180', tone, 30)),
        gw.baseUrl,
        name,
      );
      t.teardown(() => publisher.stop());
      await keyframeCached(gw, name);
    }
    const neither = await gw.post('/rest-api/mixer/startup', {
      uri: 'mixer://silent',
      hasVideo: 'false',
      hasAudio: 'false',
    });
    t.match(neither, { status: 400, body: { field: 'hasAudio' } }, 'neither picture nor sound: a 400 naming hasAudio');

    // As the REST table of the same page writes it, in its version with an audio-only mixer
    // (docs.flashphoner.com/pages/diffpagesbyversion.action?pageId=14255708, versions 3 and 4).
    const startup = await gw.post('/rest-api/mixer/startup', {
      uri: 'mixer://mixer1',
      localStreamName: 'stream3',
      hasVideo: 'false',
    });
    t.equal(startup.status, 200, JSON.stringify(startup.body));
    t.match(startup.body, { uri: 'mixer://mixer1', localStreamName: 'stream3', hasVideo: false, hasAudio: true });
    for (const name of ['voice1', 'voice2']) {
      t.equal(
        (
          await gw.post('/rest-api/mixer/add', {
            uri: 'mixer://mixer1',
            remoteStreamName: name,
            hasVideo: 'false',
            hasAudio: 'true',
          })
        ).status,
        200,
      );
    }
    t.equal(await ffmpegCount(), 1, "its encoder alone: no decoder of the inputs' video");
    const push = await gw.post('/rest-api/push/startup', {
      streamName: 'stream3',
      rtmpUrl: `${nginx.url()}/stream3`,
      rtmpTransponderFullUrl: 'true',
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    await waitFor('2 s of the audio-only mixer at nginx-rtmp', async () => {
      const recording = await probe(nginx.recording('stream3')).catch(() => undefined);
      return recording && recording.audio.length >= 90;
    });
    const arrived = await probe(nginx.recording('stream3'));
    t.same(
      arrived.streams.map((s) => `${s.codec_type} ${s.codec_name}`),
      ['audio aac'],
      'AAC alone',
    );
    // Judged on its sound alone: no keyframe and no frame rate are not faults of a push of sound.
    const health = await waitFor('the push of sound judged', async () => {
      const found = await gw.post('/rest-api/push/find', { streamName: 'stream3' });
      return (found.body as { health?: { status: string; issues: string[] } }[])[0]?.health;
    });
    t.same(health, { ...health, status: 'good', issues: [] }, "the push's ingest health: good");
    const [low, high, absent] = await toneLevels(nginx.recording('stream3'), [440, 1000, 700], 1);
    t.ok(low! > 0.02 && high! > 0.02, `both inputs are heard (440 Hz ${low!.toFixed(3)}, 1000 Hz ${high!.toFixed(3)})`);
    t.ok(absent! < low! / 5 && absent! < high! / 5, `and nothing else (700 Hz ${absent!.toFixed(3)})`);
    const listed = await gw.post('/rest-api/mixer/find_all', {});
    t.match(
      listed.body,
      [{ uri: 'mixer://mixer1', hasVideo: false, hasAudio: true, status: 'PROCESSED_LOCAL', frames: 0 }],
      'find_all tells it makes no video',
    );
    t.equal((await gw.post('/rest-api/mixer/terminate', { uri: 'mixer://mixer1' })).status, 200);
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
  },
);

t.test(
  'an automatic mixer forms from the callers of a room ("user1#room1", mixer_auto_start), a screen placed large, and ends once empty',
  async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const gw = await startGateway({
      webrtc_keyframe_interval_ms: 1000,
      mixer_auto_start: true,
      mixer_idle_timeout_ms: 1000,
    });
    t.teardown(() => gw.close());
    const call = async (name: string, colour: string, tone: number): Promise<SyntheticPublisher> => {
      const publisher = await SyntheticPublisher.publish(
        loadFixture(FIXTURES, colourLook(colour, '640x360', tone, 30)),
        gw.baseUrl,
        name,
      );
      t.teardown(() => publisher.stop());
      return publisher;
    };
    const mixers = async (): Promise<
      { uri: string; layout: string; inputs: { streamName: string; label: string }[] }[]
    > => {
      const found = await gw.post('/rest-api/mixer/find_all', {});
      return found.status === 200 ? found.body : [];
    };
    const alice = await call('alice#room1', '#ff0000', 440);
    const bob = await call('bob#room1', '#0000ff', 1000);
    const formed = await waitFor("the room's mixer with both callers", async () => {
      const room = (await mixers()).find((m) => m.uri === 'mixer://room1');
      return room?.inputs.length === 2 && room;
    });
    t.same(
      formed.inputs.map((i) => `${i.streamName} ${i.label}`),
      ['alice#room1 alice', 'bob#room1 bob'],
      'each caller an input, labelled with its name',
    );
    await keyframeCached(gw, 'room1');
    const push = await gw.post('/rest-api/push/startup', {
      streamName: 'room1',
      rtmpUrl: `${nginx.url()}/room1`,
      rtmpTransponderFullUrl: 'true',
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    await waitFor('2 s of the room at nginx-rtmp', async () => {
      const recording = await probe(nginx.recording('room1')).catch(() => undefined);
      return recording && recording.video.length >= 60 && recording.audio.length >= 90;
    });
    const arrived = await probe(nginx.recording('room1'));
    t.same(
      arrived.streams.map((s) => `${s.codec_type} ${s.codec_name}`).sort(),
      ['audio aac', 'video h264'],
      'H.264 and AAC',
    );
    const [low, high] = await toneLevels(nginx.recording('room1'), [440, 1000], 1);
    t.ok(
      low! > 0.02 && high! > 0.02,
      `both callers are heard (440 Hz ${low!.toFixed(3)}, 1000 Hz ${high!.toFixed(3)})`,
    );

    const screen = await call('carol#room1#desktop', '#00ff00', 700);
    const shared = await waitFor('the screen placed first, large', async () => {
      const room = (await mixers()).find((m) => m.uri === 'mixer://room1');
      return room?.layout === 'desktop' && room.inputs[0]?.streamName === 'carol#room1#desktop' && room;
    });
    t.equal(shared.inputs.length, 3, 'beside the two callers');
    await screen.stop();
    await waitFor(
      'the grid again once the screen left',
      async () => (await mixers()).find((m) => m.uri === 'mixer://room1')?.layout === 'grid',
    );
    t.pass('the grid again');

    await alice.stop();
    await bob.stop();
    await waitFor(
      "the empty room's mixer ended after mixer_idle_timeout_ms",
      async () => (await gw.post('/rest-api/mixer/find_all', {})).status === 404,
      10_000,
    );
    t.pass('no mixer left');
    await waitFor(
      'the push of its stream ended with it',
      async () => (await gw.post('/rest-api/push/find', { streamName: 'room1' })).status === 404,
    );
    t.pass('the push of its stream ended with it');
    await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
  },
);

t.test(
  'string booleans and numbers everywhere a REST body takes them; anything else is a 400 naming the field',
  async (t) => {
    const gw = await startGateway();
    t.teardown(() => gw.close());
    const cases: [string, object, string][] = [
      ['/rest-api/mixer/startup', { uri: 'mixer://m', hasAudio: 'yes' }, 'hasAudio'],
      ['/rest-api/mixer/startup', { uri: 'mixer://m', mixerVideoWidth: '641' }, 'mixerVideoWidth'],
      ['/rest-api/mixer/startup', { uri: 'mixer://m', width: 640, mixerVideoWidth: 640 }, 'mixerVideoWidth'],
      ['/rest-api/mixer/startup', { uri: 'mixer://m', fps: 'fast' }, 'fps'],
      ['/rest-api/mixer/startup', { uri: 'mixer://m', hasVideo: 'no' }, 'hasVideo'],
      ['/rest-api/mixer/startup', { uri: 'mixer://m', hasVideo: 'false', hasAudio: false }, 'hasAudio'],
      ['/rest-api/mixer/add', { uri: 'mixer://m', remoteStreamName: 's', label: 'a', streamLabel: 'b' }, 'streamLabel'],
      ['/rest-api/mixer/add', { uri: 'mixer://m', remoteStreamName: 's', slot: '1.5' }, 'slot'],
      [
        '/rest-api/push/startup',
        { streamName: 's', rtmpUrl: 'rtmp://127.0.0.1/live/s', rtmpTransponderFullUrl: 'TRUE' },
        'rtmpTransponderFullUrl',
      ],
      ['/rest-api/push/startup', { streamName: 's', rtmpUrl: 'rtmp://127.0.0.1/live/s', width: '99999' }, 'width'],
      ['/rest-api/mixer/setAudioVideo', { uri: 'mixer://m', remoteStreamName: 's', volume: '5' }, 'volume'],
    ];
    for (const [path, body, field] of cases) {
      const reply = await gw.post(path, body);
      t.equal(reply.status, 400, `${path} ${JSON.stringify(body)}`);
      t.match(reply.body, { field }, `names ${field}`);
    }
    // The same fields as strings where they are right: taken (404: no such stream or mixer, past validation).
    t.equal(
      (
        await gw.post('/rest-api/push/startup', {
          streamName: 's',
          rtmpUrl: 'rtmp://127.0.0.1/live/s',
          width: '640',
          height: '360',
          fps: '30',
        })
      ).status,
      404,
    );
    t.equal(
      (
        await gw.post('/rest-api/mixer/add', {
          uri: 'mixer://m',
          remoteStreamName: 's',
          slot: '1',
          waitForStream: 'false',
        })
      ).status,
      404,
    );
    t.equal(
      (
        await gw.post('/rest-api/mixer/setAudioVideo', {
          uri: 'mixer://m',
          remoteStreamName: 's',
          audioMuted: 'true',
          volume: '0.5',
        })
      ).status,
      404,
    );
  },
);
