import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Writes a WAV file of a sine tone with ffmpeg, in the sample format, rate and channels asked for. */
export async function writeToneWav(
  path: string,
  tone: {
    frequency: number;
    seconds: number;
    sampleRate: number;
    channels: 1 | 2;
    codec?: 'pcm_s16le' | 'pcm_s24le' | 'pcm_f32le' | 'pcm_u8';
  },
): Promise<void> {
  await run('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `aevalsrc=0.25*sin(2*PI*${tone.frequency}*t):s=${tone.sampleRate}:d=${tone.seconds}`,
    '-ac',
    String(tone.channels),
    '-c:a',
    tone.codec ?? 'pcm_s16le',
    path,
  ]);
}

export interface Level {
  /** Start of the window in the recording, seconds. */
  t: number;
  /** RMS level in the band, dBFS (-Infinity for digital silence). */
  db: number;
}

/**
 * The level of one frequency band in a recording's audio, per window: ffmpeg decodes the audio,
 * two cascaded band-pass filters around `frequency` keep the tone, astats measures each window.
 */
export async function bandLevels(file: string, frequency: number | 'all', windowMs = 100): Promise<Level[]> {
  const samples = Math.round((48000 * windowMs) / 1000);
  const band =
    frequency === 'all' ? [] : [`bandpass=f=${frequency}:width_type=q:w=8`, `bandpass=f=${frequency}:width_type=q:w=8`];
  const filters = [
    'aresample=48000',
    'pan=mono|c0=0.5*c0+0.5*c1',
    ...band,
    `asetnsamples=n=${samples}:p=0`,
    'astats=metadata=1:reset=1:measure_overall=RMS_level:measure_perchannel=none',
    'ametadata=mode=print:key=lavfi.astats.Overall.RMS_level:file=-',
  ];
  const { stdout } = await run(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-i', file, '-vn', '-af', filters.join(','), '-f', 'null', '-'],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const levels: Level[] = [];
  let t = 0;
  for (const line of stdout.split('\n')) {
    const time = /pts_time:([\d.]+)/.exec(line);
    if (time) t = Number(time[1]);
    const level = /RMS_level=(\S+)/.exec(line);
    if (level) levels.push({ t, db: level[1] === '-inf' ? -Infinity : Number(level[1]) });
  }
  return levels;
}

/** Runs of windows where `present(db)` holds: [start, end) in seconds. */
export function runs(levels: Level[], present: (db: number) => boolean, windowS: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const { t, db } of levels) {
    if (!present(db)) continue;
    const last = out.at(-1);
    if (last && Math.abs(last[1] - t) < windowS / 2) last[1] = t + windowS;
    else out.push([t, t + windowS]);
  }
  return out;
}
