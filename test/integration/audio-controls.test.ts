import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe } from '../../kit/probe.js';
import { pidsMatching, sleep, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { syntheticPublish } from '../helpers/synthetic.js';
import { bandLevels, runs, writeToneWav, type Level } from '../helpers/tones.js';
import { IN_WORKERS } from '../helpers/gateway.js';

// The publisher sends a 440 Hz tone (the fixture's Opus); sound files are tones of other
// frequencies. What nginx-rtmp recorded is measured band by band with ffmpeg's filters.

const LIVE_HZ = 440;
const ONCE_HZ = 1500;
const LOOP_HZ = 2500;
const WINDOW_S = 0.1;
/** A band holding its tone is far above this; the other tones, silence and codec noise far below. */
const PRESENT_DB = -40;

const mediaDir = await mkdtemp(join(tmpdir(), 'media-'));
t.teardown(() => rm(mediaDir, { recursive: true, force: true }));
// Different rates, channel counts and sample formats: every one is played at 48 kHz stereo.
await writeToneWav(join(mediaDir, 'once.wav'), { frequency: ONCE_HZ, seconds: 1, sampleRate: 44100, channels: 1 });
await writeToneWav(join(mediaDir, 'loop.wav'), {
  frequency: LOOP_HZ,
  seconds: 0.4,
  sampleRate: 22050,
  channels: 2,
  codec: 'pcm_f32le',
});

const nginx = await NginxRtmp.start();
t.teardown(() => nginx.stop());

t.test(
  'mute, sound_on (once and looping), unmute and sound_off change the RTMP output on one connection',
  async (t) => {
    const { gw } = await syntheticPublish(t, { ...IN_WORKERS, media_dir: mediaDir }, 'tone');
    const started = await gw.post('/rest-api/push/startup', { streamName: 'tone', rtmpUrl: nginx.url() });
    t.equal(started.status, 200, JSON.stringify(started.body));
    const id: string = started.body.mediaSessionId;
    const state = async (): Promise<{ muted: boolean; soundEnabled: boolean }> =>
      (await gw.post('/rest-api/push/find', { streamName: 'tone' })).body[0];
    const stream = await waitFor('the stream at nginx-rtmp', async () =>
      (await nginx.streams()).find((s) => s.name === 'rtmp_tone'),
    );
    const clientIds = new Set([stream.clientId]);
    const command = async (path: string, body: object = {}): Promise<number> => {
      const res = await gw.post(`/rest-api/push/${path}`, { mediaSessionId: id, ...body });
      t.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
      for (const s of await nginx.streams()) if (s.name === 'rtmp_tone') clientIds.add(s.clientId);
      return Date.now();
    };

    await sleep(1500);
    const times: Record<string, number> = {};
    times.mute = await command('mute');
    t.match(await state(), { muted: true, soundEnabled: false });
    await sleep(1500);
    times.once = await command('sound_on', { soundFile: 'once.wav' });
    t.match(await state(), { muted: true, soundEnabled: true });
    await waitFor('soundEnabled to turn false when the file ends', async () => !(await state()).soundEnabled, 3000);
    times.onceEnded = Date.now();
    await sleep(500);
    times.unmute = await command('unmute');
    t.match(await state(), { muted: false, soundEnabled: false });
    await sleep(1000);
    times.loop = await command('sound_on', { soundFile: 'loop.wav', loop: true, volume: 0.5 });
    await sleep(2000);
    t.match(
      await state(),
      { muted: false, soundEnabled: true },
      'a looping file is still playing after 5 times its length',
    );
    times.off = await command('sound_off');
    t.match(await state(), { muted: false, soundEnabled: false });
    await sleep(1500);
    t.equal(clientIds.size, 1, 'nginx-rtmp saw one publishing connection throughout');
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 200);

    const file = nginx.recording('rtmp_tone');
    await waitFor(
      'the recording to be closed',
      async () => !(await nginx.streams()).some((s) => s.name === 'rtmp_tone'),
    );
    const recording = await probe(file);
    const videoGaps = recording.video.map((p, i, all) => (i ? Number(p.pts_time) - Number(all[i - 1]!.pts_time) : 0));
    t.ok(Math.max(...videoGaps) < 0.2, `no gap in the video (largest ${Math.max(...videoGaps).toFixed(3)} s)`);

    const [live, once, loop, all] = await Promise.all([
      bandLevels(file, LIVE_HZ),
      bandLevels(file, ONCE_HZ),
      bandLevels(file, LOOP_HZ),
      bandLevels(file, 'all'),
    ]);
    const on = (levels: Level[]): Array<[number, number]> =>
      runs(levels, (db) => db > PRESENT_DB, WINDOW_S).filter(([a, b]) => b - a > 0.25);
    const liveRuns = on(live);
    const onceRuns = on(once);
    const loopRuns = on(loop);
    t.comment(`live ${JSON.stringify(liveRuns)} once ${JSON.stringify(onceRuns)} loop ${JSON.stringify(loopRuns)}`);

    // The live tone: on, off while muted, back after unmute, on to the end.
    t.equal(liveRuns.length, 2, 'the live tone stops once (mute) and comes back once (unmute)');
    const [beforeMute, afterUnmute] = liveRuns as [[number, number], [number, number]];
    const muteAt = beforeMute[1];
    const unmuteAt = afterUnmute[0];
    near(t, unmuteAt - muteAt, (times.unmute! - times.mute!) / 1000, 'muted for as long as the commands said');

    // While muted, before the file: silence, not just a quieter tone.
    const silent = all.filter((l) => l.t > muteAt + 0.2 && l.t < muteAt + 1.2);
    t.ok(
      silent.length >= 8 && silent.every((l) => l.db < -70),
      `silence while muted (loudest ${Math.max(...silent.map((l) => l.db)).toFixed(1)} dB)`,
    );

    // The one-shot file: alone (muted), as long as the file, then gone by itself.
    t.equal(onceRuns.length, 1, 'the one-shot file plays once');
    const [onceStart, onceEnd] = onceRuns[0]!;
    near(t, onceEnd - onceStart, 1.0, 'for the length of the file', 0.25);
    near(t, onceStart - muteAt, (times.once! - times.mute!) / 1000, 'starting when sound_on was answered');
    t.ok(onceStart > muteAt && onceEnd < unmuteAt, 'muted + sound_on: only the file is heard');

    // The looping file: mixed over the live tone, unbroken although 0.4 s long, until sound_off.
    t.equal(loopRuns.length, 1, 'the looping file plays without a break');
    const [loopStart, loopEnd] = loopRuns[0]!;
    near(t, loopEnd - loopStart, (times.off! - times.loop!) / 1000, 'until sound_off');
    near(t, loopStart - unmuteAt, (times.loop! - times.unmute!) / 1000, 'starting when sound_on was answered');
    t.ok(afterUnmute[0] < loopStart && afterUnmute[1] > loopEnd, 'the live tone goes on under the file: mixed');
    const loopLevel = median(loop.filter((l) => l.t > loopStart + 0.2 && l.t < loopEnd - 0.2).map((l) => l.db));
    const onceLevel = median(once.filter((l) => l.t > onceStart + 0.2 && l.t < onceEnd - 0.2).map((l) => l.db));
    near(
      t,
      onceLevel - loopLevel,
      6,
      `volume 0.5 plays 6 dB lower (${loopLevel.toFixed(1)} vs ${onceLevel.toFixed(1)} dB)`,
      1.5,
    );
  },
);

function near(t: Test, actual: number, expected: number, what: string, tolerance = 0.3): void {
  t.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual.toFixed(2)} vs ${expected.toFixed(2)} (±${tolerance})`,
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

t.test('audio commands: errors name the field, and nothing starts for a bad file', async (t) => {
  const { symlink, writeFile, mkdir } = await import('node:fs/promises');
  await writeFile(join(mediaDir, 'notes.wav'), 'not audio at all, just text');
  await writeFile(
    join(mediaDir, 'fake.wav'),
    Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEjunk', 'latin1'), Buffer.alloc(64)]),
  );
  await mkdir(join(mediaDir, 'folder.wav'), { recursive: true });
  const outside = await mkdtemp(join(tmpdir(), 'outside-'));
  t.teardown(() => rm(outside, { recursive: true, force: true }));
  await writeToneWav(join(outside, 'elsewhere.wav'), { frequency: 1000, seconds: 0.2, sampleRate: 8000, channels: 1 });
  await symlink(join(outside, 'elsewhere.wav'), join(mediaDir, 'link-out.wav'));
  await symlink('once.wav', join(mediaDir, 'link-in.wav'));

  const { gw } = await syntheticPublish(t, { ...IN_WORKERS, media_dir: mediaDir }, 'errs');
  const started = await gw.post('/rest-api/push/startup', { streamName: 'errs', rtmpUrl: nginx.url() });
  t.equal(started.status, 200);
  const id = started.body.mediaSessionId;

  for (const path of ['mute', 'unmute', 'sound_off']) {
    const res = await gw.post(`/rest-api/push/${path}`, { mediaSessionId: 'no-such-session' });
    t.equal(res.status, 404, `${path} of an unknown session: 404`);
  }
  t.equal(
    (await gw.post('/rest-api/push/sound_on', { mediaSessionId: 'no-such-session', soundFile: 'once.wav' })).status,
    404,
  );
  t.match((await gw.post('/rest-api/push/mute', {})).body, { error: 'invalid_request', field: 'mediaSessionId' });

  const soundOn = (soundFile: string, extra: object = {}) =>
    gw.post('/rest-api/push/sound_on', { mediaSessionId: id, soundFile, ...extra });
  const missing = await soundOn('missing.wav');
  t.equal(missing.status, 404);
  t.match(missing.body, { message: 'No such file', field: 'soundFile' });
  const refused: Array<[string, RegExp]> = [
    ['../once.wav', /plain file name/],
    ['sub/once.wav', /plain file name/],
    ['/etc/passwd', /plain file name/],
    ['..', /plain file name/],
    ['link-out.wav', /leads outside the media directory/],
    ['folder.wav', /not a regular file/],
    ['notes.wav', /not a RIFF WAV file/],
    ['fake.wav', /could not be decoded/],
  ];
  for (const [name, reason] of refused) {
    const res = await soundOn(name);
    t.equal(res.status, 400, `${name}: 400`);
    t.match(res.body, { field: 'soundFile', message: reason }, `${name}: ${res.body.message}`);
  }
  t.match((await soundOn('once.wav', { volume: 2 })).body, { field: 'volume' });
  t.match(
    (await gw.post('/rest-api/push/find', { streamName: 'errs' })).body[0],
    { soundEnabled: false, state: 'running' },
    'still running, no sound',
  );
  t.equal(await decoders(), 0, 'no sound decoder was left running by a refused file');
  t.equal((await soundOn('link-in.wav', { loop: true })).status, 200, 'a symlink to a file inside the directory plays');
  t.equal(await decoders(), 1);
  t.equal((await gw.post('/rest-api/push/sound_off', { mediaSessionId: id })).status, 200);
  t.equal(await decoders(), 0, 'sound_off ends the decoder');
});

/** ffmpeg processes decoding a file of the media directory. */
async function decoders(): Promise<number> {
  return (await pidsMatching(`file:${mediaDir}`)).length;
}

t.test('startup options apply the audio action from the first moment; bad ones start nothing', async (t) => {
  const { gw } = await syntheticPublish(t, { ...IN_WORKERS, media_dir: mediaDir }, 'opts');
  const rtmpUrl = nginx.url();
  const muted = await gw.post('/rest-api/push/startup', { streamName: 'opts', rtmpUrl, options: { action: 'mute' } });
  t.match(muted.body, { state: 'running', muted: true, soundEnabled: false, options: { action: 'mute' } });
  const sound = await gw.post('/rest-api/push/startup', {
    streamName: 'opts',
    rtmpUrl: `${rtmpUrl}/with-sound`,
    rtmpTransponderFullUrl: true,
    options: { action: 'sound_on', soundFile: 'loop.wav', loop: true },
  });
  t.match(sound.body, { state: 'running', muted: false, soundEnabled: true }, JSON.stringify(sound.body));

  const bad: Array<[object, number, string, RegExp]> = [
    [{ action: 'sound_on', soundFile: 'missing.wav' }, 404, 'options.soundFile', /No such file/],
    [{ action: 'sound_on', soundFile: '../x.wav' }, 400, 'options.soundFile', /plain file name/],
    [{ action: 'sound_on' }, 400, 'options.soundFile', /required/],
    [{ action: 'mute', soundFile: 'once.wav' }, 400, 'options.soundFile', /only with "action": "sound_on"/],
    [{ action: 'shout' }, 400, 'options.action', /./],
  ];
  for (const [options, status, field, message] of bad) {
    const res = await gw.post('/rest-api/push/startup', {
      streamName: 'opts',
      rtmpUrl: `${rtmpUrl}/third`,
      rtmpTransponderFullUrl: true,
      options,
    });
    t.equal(res.status, status, JSON.stringify(options));
    t.match(res.body, { field, message }, res.body.message);
  }
  t.equal((await gw.post('/rest-api/push/find_all')).body.length, 2, 'no push was added by a refused startup');
});

t.test('an ffmpeg that takes the audio but writes nothing fails the startup within the start timeout', async (t) => {
  const { writeFile, chmod } = await import('node:fs/promises');
  const silent = join(mediaDir, 'silent-ffmpeg.sh');
  await writeFile(silent, '#!/bin/sh\ncat > /dev/null\n'); // the shell stays, its path in its command line
  await chmod(silent, 0o755);
  const { gw } = await syntheticPublish(
    t,
    { ...IN_WORKERS, ffmpeg_path: silent, ffmpeg_start_timeout_ms: 1000 },
    'mute-ffmpeg',
  );
  const started = Date.now();
  const res = await gw.post('/rest-api/push/startup', { streamName: 'mute-ffmpeg', rtmpUrl: nginx.url() });
  // Alive and silent looks like a machine too busy to run it: try again later.
  t.equal(res.status, 503);
  t.match(res.body, { error: 'unavailable', message: /ffmpeg wrote no output within 1000 ms/ });
  t.ok(Date.now() - started < 4000, 'answered soon after the timeout');
  t.equal((await gw.post('/rest-api/push/find_all')).status, 404, 'nothing is left listed');
  t.same(await pidsMatching(silent), [], 'and nothing is left running');
});
