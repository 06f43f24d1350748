import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import t from 'tap';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { FfmpegSupervisor } from '../../src/ffmpeg/supervisor.js';
import { FlvReader, FlvTagType, isAudioFrameTag, isAudioHeaderTag } from '../../src/media/flv.js';
import type { LifecycleEvent } from '../../src/plane/lifecycle.js';
import type { Link } from '../../src/links/link.js';
import { recordLinks, type RecordingEvent, type RecordSettings } from '../../src/links/record-link.js';
import { RecordingLibrary } from '../../src/recordings/library.js';
import { fixtureFlvVideo } from '../helpers/flv-video.js';

// Recordings after days of stream time, reached without waiting for them: the recording's own
// ffmpeg is given the push's FLV with its timestamps days on (and across FLV's 32-bit wrap at
// 49.7 days), and a recording that never ends is kept within its retention part by part.

const run = promisify(execFile);
const DAY_MS = 86_400_000;
const FRAME_MS = 1000 / 30;

const supervisor = new FfmpegSupervisor();
t.teardown(() => supervisor.killAll());

/** A recording link of `stream` into `dir`, its parts `partS` long, its events kept (and told to `follow`). */
async function recording(
  dir: string,
  stream: string,
  partS: number,
  follow?: (event: LifecycleEvent) => void,
): Promise<{ link: Link; events: RecordingEvent[] }> {
  const record: RecordSettings = { dir, filePattern: '{stream}', partS, minFreeMb: 1, fileMode: 0o640, dirMode: 0o750 };
  const events: RecordingEvent[] = [];
  const open = recordLinks(
    {
      connectTimeoutMs: 10_000,
      stopTimeoutMs: 10_000,
      maxLagMs: 60_000,
      sendBuffer: { enabled: false, startMs: 0, maxMs: 0, pollingMs: 10, maxBufferings: -1 },
      onBufferState: () => {},
      spawn: (args, fd3) => supervisor.spawn('ffmpeg', args, () => {}, fd3),
      record,
    },
    { stream, mediaSessionId: `${stream}-push` },
    (event) => {
      events.push(event);
      follow?.({ type: `recording.${event.type}`, ...event.part } as LifecycleEvent);
    },
  );
  return { link: await open(false), events };
}

/** AAC as the push's encoder makes it: its sequence header and 10 s of 1024-sample frames at 48 kHz, made once with ffmpeg. */
async function flvAudio(): Promise<{ header: Buffer; frames: Buffer[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'aac-'));
  try {
    const file = join(dir, 'sine.flv');
    await run('ffmpeg', [
      '-nostdin',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'sine=f=440:r=48000:d=10',
      '-c:a',
      'aac',
      '-b:a',
      '128k',
      '-f',
      'flv',
      file,
    ]);
    const tags = new FlvReader().push(await readFile(file)).filter((tag) => tag.type === FlvTagType.AUDIO);
    return {
      header: tags.find((tag) => isAudioHeaderTag(tag))!.body,
      frames: tags.filter((tag) => isAudioFrameTag(tag)).map((tag) => tag.body),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
const audio = await flvAudio();
const AAC_FRAME_MS = 1024 / 48;

/**
 * Writes the media of `[fromMs, toMs)` of a push whose timeline is at `firstMs` when it begins, as
 * its FLV does (32-bit timestamps): 30 fps video and AAC, in order of time.
 */
function writeMedia(link: Link, firstMs: number, fromMs: number, toMs: number): void {
  const video = fixtureFlvVideo();
  if (fromMs === 0) {
    link.out.writeVideo(firstMs >>> 0, video.header);
    link.out.writeAudio(firstMs >>> 0, audio.header);
  }
  let v = Math.ceil(fromMs / FRAME_MS);
  let a = Math.ceil(fromMs / AAC_FRAME_MS);
  for (;;) {
    const [videoAt, audioAt] = [v * FRAME_MS, a * AAC_FRAME_MS];
    if (Math.min(videoAt, audioAt) >= toMs) return;
    if (videoAt <= audioAt) link.out.writeVideo(Math.round(firstMs + videoAt) >>> 0, video.frame(v++));
    else link.out.writeAudio(Math.round(firstMs + audioAt) >>> 0, audio.frames[a++ % audio.frames.length]!);
  }
}

for (const [label, firstMs] of [
  ['3 days', 3 * DAY_MS],
  ["past FLV's 32-bit wrap (49.7 days)", 2 ** 32 - 3000],
] as const) {
  t.test(
    `a recording begun ${label} into its push's timeline: each part has its own time from 0 and its duration`,
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'long-recording-'));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      const { link, events } = await recording(dir, 'daylong', 2);
      // 8 s of video (a keyframe every 2 s): parts of 2 s.
      writeMedia(link, firstMs, 0, 8000);
      await waitFor('three parts finished', () => events.filter((e) => e.type === 'finished').length >= 3, 20_000);
      await link.close();
      // The last part (from 6 s) is finished as its ffmpeg ends.
      await waitFor('four parts finished', () => events.filter((e) => e.type === 'finished').length >= 4, 10_000);
      const finished = events.filter((e) => e.type === 'finished').map((e) => e.part);
      t.equal(finished.length, 4, `${finished.length} parts`);
      for (const part of finished.slice(0, 3)) {
        const probed = await probe(join(dir, part.file));
        const times = probed.video.map((p) => Number(p.pts_time));
        t.ok(Math.abs(times[0]!) < 0.1, `${part.file} starts at ${times[0]} s`);
        const sound = probed.audio.map((p) => Number(p.pts_time));
        t.ok(
          Math.abs(sound[0]! - times[0]!) < 0.05 && sound.at(-1)! - sound[0]! > 1.9,
          `${part.file}: its sound from ${sound[0]} s to ${sound.at(-1)} s`,
        );
        t.equal(times.length, 60, `${part.file}: 2 s of frames`);
        t.ok(
          Math.abs(times.at(-1)! - times[0]! - (59 * FRAME_MS) / 1000) < 0.01,
          `${part.file}: its frames span ${(times.at(-1)! - times[0]!).toFixed(3)} s`,
        );
        t.ok(Math.abs(part.durationMs! - 2000) <= 50, `${part.file} told lasting ${part.durationMs} ms`);
      }
      const library = new RecordingLibrary(dir, { maxAgeHours: 0, maxMb: 0 }, 0o640, pino({ level: 'silent' }));
      const listed = await library.list({ streamName: 'daylong' });
      t.same(
        listed.map((r) => r.fileName),
        finished.map((p) => p.file),
        'listed in order',
      );
      t.same(
        listed.slice(0, 3).map((r) => Math.abs(r.durationMs! - 2000) <= 50),
        [true, true, true],
        `listed with their durations (${listed.map((r) => r.durationMs).join(', ')} ms)`,
      );
      const starts = listed.map((r) => Date.parse(r.startedAt));
      t.same(
        starts.slice(1, 3).map((at, i) => at - starts[i]!),
        [2000, 2000],
        'each listed starting 2 s after the one before',
      );
    },
  );
}

t.test(
  'a recording that never ends: retention keeps record_dir within record_retention_max_mb, part by part',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'endless-recording-'));
    const library = new RecordingLibrary(dir, { maxAgeHours: 0, maxMb: 1 }, 0o640, pino({ level: 'silent' }));
    const { link, events } = await recording(dir, 'endless', 2, (event) => library.follow(event));
    // Its ffmpeg stopped, and what it wrote put in place, before the folder goes.
    t.teardown(async () => {
      await link.close();
      library.close();
      await waitFor(
        'its own folder gone',
        async () => !(await readdir(dir)).includes('.endless.writing'),
        10_000,
      ).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    });
    /** The size of the finished parts in record_dir, after the sweep each finished part begins. */
    const finishedBytes = async (): Promise<number> => {
      await library.sweep();
      const writing = events.filter((e) => e.type === 'started').at(-1)?.part.file;
      const parts = (await readdir(dir)).filter((f) => f.endsWith('.mp4') && f !== writing);
      return (await Promise.all(parts.map((f) => stat(join(dir, f)).then((s) => s.size)))).reduce((a, b) => a + b, 0);
    };
    // 24 parts of 2 s at ~600 KB: 14 MB written, in steps of a part.
    let most = 0;
    for (let part = 0; part < 24; part++) {
      writeMedia(link, 5 * DAY_MS, part * 2000, (part + 1) * 2000);
      await waitFor(
        `part ${part + 1} begun`,
        () => events.filter((e) => e.type === 'started').length >= part + 1,
        10_000,
      );
      most = Math.max(most, await finishedBytes());
    }
    const finished = events.filter((e) => e.type === 'finished').length;
    t.ok(finished >= 20, `${finished} parts finished`);
    t.ok(
      most > 0 && most <= 1048576,
      `the finished parts never took more than 1 MB after a sweep (most: ${(most / 1024).toFixed(0)} KB)`,
    );
    const left = (await readdir(dir)).filter((f) => f.endsWith('.mp4')).sort();
    t.ok(left.length >= 2 && left.length <= 4, `${left.length} parts left: the newest (${left.join(', ')})`);
    t.ok(left.includes(events.filter((e) => e.type === 'started').at(-1)!.part.file), 'the part being written stays');
    t.ok((await readdir(dir)).includes('.endless.json'), "the recording's own files stay while it has parts");
  },
);
