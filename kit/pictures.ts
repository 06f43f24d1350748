import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A decoded picture: 8-bit RGB, row by row. */
export interface Picture {
  width: number;
  height: number;
  rgb: Buffer;
}

export type Rgb = [number, number, number];

/** One picture decoded by ffmpeg: a JPEG (a snapshot), or the first frame of a recording. Its size is read first with ffprobe. */
export async function decodePicture(file: string): Promise<Picture> {
  const { width, height } = await videoSize(file);
  const { stdout } = await run(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-i',
      file,
      '-frames:v',
      '1',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      'pipe:1',
    ],
    {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  if (stdout.length < width * height * 3) throw new Error(`${file}: no picture decoded`);
  return { width, height, rgb: stdout.subarray(0, width * height * 3) };
}

/**
 * The last keyframe of a recording, decoded: what it showed at most a keyframe interval before
 * its end. The file is read from its start, not sought into: a sequence header met on the way (a
 * new encoder's, as when a push hands over to its still picture) then applies to the frames after
 * it, where a seek past it would decode them with the first one's and give grey.
 */
export async function lastKeyframe(file: string): Promise<Picture> {
  const { width, height } = await videoSize(file);
  const dir = await mkdtemp(join(tmpdir(), 'keyframe-'));
  try {
    const out = join(dir, 'last.rgb');
    // Only keyframes are decoded; each is written over the one before (`-update`).
    await run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-skip_frame',
      'nokey',
      '-i',
      file,
      '-an',
      '-fps_mode',
      'passthrough',
      '-c:v',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-f',
      'image2',
      '-update',
      '1',
      out,
    ]);
    const rgb = await readFile(out).catch(() => Buffer.alloc(0));
    if (rgb.length !== width * height * 3) throw new Error(`${file}: no keyframe decoded`);
    return { width, height, rgb };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function videoSize(file: string): Promise<{ width: number; height: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=width,height',
    '-of',
    'csv=p=0',
    file,
  ]);
  const [width, height] = stdout.trim().split(',').map(Number) as [number, number];
  return { width, height };
}

/** The mean colour of the 8x8 pixels around (x, y), as fractions of the width and height. */
export function colourAt(picture: Picture, fx: number, fy: number): Rgb {
  const cx = Math.round(fx * (picture.width - 1));
  const cy = Math.round(fy * (picture.height - 1));
  const sum: Rgb = [0, 0, 0];
  let n = 0;
  for (let y = Math.max(0, cy - 4); y < Math.min(picture.height, cy + 4); y++) {
    for (let x = Math.max(0, cx - 4); x < Math.min(picture.width, cx + 4); x++) {
      const at = (y * picture.width + x) * 3;
      for (let c = 0; c < 3; c++) sum[c] = sum[c]! + picture.rgb[at + c]!;
      n++;
    }
  }
  return sum.map((v) => Math.round(v / n)) as Rgb;
}

/** The mean brightness (0-255, the mean of R, G and B) of a rectangle, its corners as fractions of the width and height. */
export function brightness(picture: Picture, fx0: number, fy0: number, fx1: number, fy1: number): number {
  let sum = 0;
  let n = 0;
  for (let y = Math.round(fy0 * picture.height); y < Math.round(fy1 * picture.height); y++) {
    for (let x = Math.round(fx0 * picture.width); x < Math.round(fx1 * picture.width); x++) {
      const at = (y * picture.width + x) * 3;
      sum += (picture.rgb[at]! + picture.rgb[at + 1]! + picture.rgb[at + 2]!) / 3;
      n++;
    }
  }
  return n ? sum / n : 0;
}

/** Whether `colour` is within `tolerance` of `#rrggbb` in each channel (compression moves colours a little). */
export function looksLike(colour: Rgb, expected: string, tolerance = 40): boolean {
  const want = [1, 3, 5].map((i) => parseInt(expected.slice(i, i + 2), 16));
  return colour.every((v, c) => Math.abs(v - want[c]!) <= tolerance);
}

/**
 * How strong each tone is in a recording's sound (its first channel, decoded by ffmpeg), by the
 * Goertzel algorithm over the last `seconds`: the amplitude at each frequency, 0 to 1.
 */
export async function toneLevels(file: string, frequencies: number[], seconds = 2): Promise<number[]> {
  const { stdout } = await run(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-sseof',
      String(-seconds),
      '-i',
      file,
      '-map',
      '0:a:0',
      '-ac',
      '1',
      '-ar',
      '48000',
      '-f',
      's16le',
      'pipe:1',
    ],
    {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const samples = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
  return frequencies.map((f) => {
    const coefficient = 2 * Math.cos((2 * Math.PI * f) / 48000);
    let s1 = 0;
    let s2 = 0;
    for (const sample of samples) {
      const s0 = sample / 32768 + coefficient * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    const power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    return (2 * Math.sqrt(Math.max(0, power))) / samples.length;
  });
}
