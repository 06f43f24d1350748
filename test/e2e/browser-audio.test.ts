import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';
import { bandLevels, runs, writeToneWav } from '../helpers/tones.js';

// Chromium's fake microphone plays a 660 Hz tone; the sound file is 1500 Hz.
const MIC_HZ = 660;
const FILE_HZ = 1500;
const dir = await mkdtemp(join(tmpdir(), 'browser-audio-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const mic = join(dir, 'mic.wav');
await writeToneWav(mic, { frequency: MIC_HZ, seconds: 20, sampleRate: 48000, channels: 1 });
await writeToneWav(join(dir, 'beep.wav'), {
  frequency: FILE_HZ,
  seconds: 1,
  sampleRate: 16000,
  channels: 1,
  codec: 'pcm_s24le',
});

const stage = useStage([{ media_dir: dir }], [`--use-file-for-fake-audio-capture=${mic}`]);

t.test(
  "a browser's microphone muted, replaced by a sound file and unmuted, as the RTMP server recorded it",
  async (t) => {
    const page = stage.browser.page;
    await page.goto(stage.gw.baseUrl + '/');
    await page.fill('#name', 'mic1');
    await page.fill('#rtmpUrl', stage.nginx.url());
    await page.uncheck('#fullUrl');
    await page.click('#publish');
    await waitFor(
      'video at the RTMP server',
      async () => (await stage.nginx.streams()).some((s) => s.name === 'rtmp_mic1' && s.width > 0),
      20000,
    );
    const [push] = (await stage.gw.post('/rest-api/push/find', { streamName: 'mic1' })).body;
    const command = async (path: string, body: object = {}): Promise<number> => {
      const res = await stage.gw.post(`/rest-api/push/${path}`, { mediaSessionId: push.mediaSessionId, ...body });
      t.equal(res.status, 200, path);
      return Date.now();
    };

    await sleep(2000);
    const muteAt = await command('mute');
    await sleep(1000);
    const soundAt = await command('sound_on', { soundFile: 'beep.wav' });
    await waitFor(
      'the file to end by itself',
      async () => !(await stage.gw.post('/rest-api/push/find', { streamName: 'mic1' })).body[0].soundEnabled,
      3000,
    );
    await sleep(500); // silence again: still muted
    const unmuteAt = await command('unmute');
    await sleep(2000);
    await command('terminate');
    await waitFor(
      'the recording to end',
      async () => !(await stage.nginx.streams()).some((s) => s.name === 'rtmp_mic1'),
      5000,
    );

    const file = stage.nginx.recording('rtmp_mic1');
    const on = (levels: Awaited<ReturnType<typeof bandLevels>>): Array<[number, number]> =>
      runs(levels, (db) => db > -40, 0.1).filter(([a, b]) => b - a > 0.25);
    const micRuns = on(await bandLevels(file, MIC_HZ));
    const fileRuns = on(await bandLevels(file, FILE_HZ));
    t.comment(`microphone ${JSON.stringify(micRuns)}, file ${JSON.stringify(fileRuns)}`);
    t.equal(micRuns.length, 2, 'the microphone is heard, silenced, then heard again');
    t.equal(fileRuns.length, 1, 'the file is heard once');
    const [before, after] = micRuns as [[number, number], [number, number]];
    const [fileStart, fileEnd] = fileRuns[0]!;
    t.ok(
      before[1] < fileStart && fileEnd < after[0] - 0.3,
      'the file plays alone, inside the muted stretch, which goes on after it',
    );
    t.ok(
      Math.abs(after[0] - before[1] - (unmuteAt - muteAt) / 1000) < 0.3,
      `muted ${(after[0] - before[1]).toFixed(2)} s for ${((unmuteAt - muteAt) / 1000).toFixed(2)} s of commands`,
    );
    t.ok(
      Math.abs(fileStart - before[1] - (soundAt - muteAt) / 1000) < 0.3,
      'the file starts when sound_on was answered',
    );
    t.ok(
      Math.abs(fileEnd - fileStart - 1) < 0.25,
      `the file plays for its length (${(fileEnd - fileStart).toFixed(2)} s)`,
    );
  },
);
