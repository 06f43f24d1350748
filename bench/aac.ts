import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { clip, type ClipKind } from '../kit/programme-audio.js';
import { noiseToMask, type Nmr } from './nmr.js';
import type { Bench } from './report.js';

/**
 * ffmpeg's native AAC encoder, setting against setting, on speech and on music made for the
 * purpose: CPU (user + system seconds of one ffmpeg encoding the clip from PCM, the median of three,
 * as % of a core in real time), the bitrate it actually made, and how audible its noise is (the
 * noise-to-mask ratio of the decoded result against the source). The gateway encodes with the
 * setting `audio_aac_coder` names, and the benchmark's peer with the same.
 */
interface Setting {
  name: string;
  args: string[];
  /** Measured at these bitrates only (a slow reference). */
  kbps?: number[];
}

const SETTINGS: Setting[] = [
  { name: 'twoloop', args: ['-aac_coder', 'twoloop'] },
  { name: 'fast', args: ['-aac_coder', 'fast'] },
  { name: 'fast, no PNS', args: ['-aac_coder', 'fast', '-aac_pns', '0'] },
  { name: 'fast, no TNS', args: ['-aac_coder', 'fast', '-aac_tns', '0'] },
  // The experimental ANMR search, ten times slower: the quality a search can reach, for reference.
  { name: 'anmr (reference)', args: ['-strict', 'experimental', '-aac_coder', 'anmr'], kbps: [128] },
];
const BITRATES = [96, 128, 160];
const KINDS: ClipKind[] = ['speech', 'music'];
const RATE = 48000;
const RUNS = 3;

interface Row {
  clip: ClipKind;
  setting: string;
  kbps: number;
  cpuPercent: number;
  madeKbps: number;
  nmr: Nmr;
}

export function aacCoders(bench: Bench): Row[] {
  const seconds = bench.quick ? 10 : 30;
  const dir = join(bench.work, 'aac');
  mkdirSync(dir, { recursive: true });
  console.log(
    `\nThe AAC encoder's settings: ${seconds} s of speech and of music, 48 kHz stereo, ${RUNS} encodes each (CPU median)`,
  );
  const rows: Row[] = [];
  for (const kind of KINDS) {
    const wav = clip(join(bench.work, 'fixture'), kind, seconds);
    const source = pcm(wav);
    for (const kbps of BITRATES) {
      for (const setting of SETTINGS) {
        if (setting.kbps && !setting.kbps.includes(kbps)) continue;
        const out = join(dir, `${kind}-${kbps}-${setting.name.replace(/\W+/g, '-')}.m4a`);
        const runs = setting.kbps ? 1 : RUNS;
        const cpu = median(Array.from({ length: runs }, () => encode(wav, out, kbps, setting.args)));
        const decoded = pcm(out);
        const frames = lag(source, decoded);
        if (Math.abs(frames) > 0) console.log(`  (${out}: decoded ${frames} frames late)`);
        const nmr = noiseToMask(source, shift(decoded, frames), RATE);
        const madeKbps = (statSync(out).size * 8) / seconds / 1000;
        const row = { clip: kind, setting: setting.name, kbps, cpuPercent: (cpu / seconds) * 100, madeKbps, nmr };
        rows.push(row);
        console.log(
          `  ${kind.padEnd(6)} ${String(kbps).padStart(3)} kb/s  ${setting.name.padEnd(17)} CPU ${row.cpuPercent.toFixed(2).padStart(5)} % of a core, ` +
            `made ${row.madeKbps.toFixed(0)} kb/s, NMR ${nmr.totalDb.toFixed(1).padStart(5)} dB, disturbed frames ${(nmr.disturbedFrames * 100).toFixed(0).padStart(3)} %, ` +
            `SNR ${nmr.snrDb.toFixed(1)} dB, bandwidth ${nmr.bandwidthKhz.toFixed(1)} kHz`,
        );
      }
    }
  }
  const of = (name: string): Row[] => rows.filter((r) => r.setting === name);
  const sum = (list: Row[], field: (r: Row) => number): number => list.reduce((total, r) => total + field(r), 0);
  const twoloop = of('twoloop');
  const fast = of('fast');
  bench.report(
    'aac: fast against twoloop, CPU (all clips and bitrates)',
    sum(fast, (r) => r.cpuPercent) / sum(twoloop, (r) => r.cpuPercent),
    'x',
    { max: 0.67 },
  );
  bench.report(
    'aac: fast against twoloop, NMR (mean difference)',
    sum(fast, (r) => r.nmr.totalDb) / fast.length - sum(twoloop, (r) => r.nmr.totalDb) / twoloop.length,
    'dB',
    {
      max: 1,
    },
  );
  bench.details.aac = rows;
  return rows;
}

/** User and system CPU seconds of one encode, from ffmpeg's `-benchmark`. */
function encode(wav: string, out: string, kbps: number, args: string[]): number {
  const result = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostdin',
      '-benchmark',
      '-y',
      '-i',
      wav,
      '-c:a',
      'aac',
      ...args,
      '-b:a',
      `${kbps}k`,
      '-ar',
      String(RATE),
      '-ac',
      '2',
      out,
    ],
    { encoding: 'utf8' },
  );
  const times = /utime=([\d.]+)s stime=([\d.]+)s/.exec(result.stderr);
  if (result.status !== 0 || !times) throw new Error(`ffmpeg could not encode ${out}: ${result.stderr.slice(-400)}`);
  return Number(times[1]) + Number(times[2]);
}

/** The file decoded to 32-bit float, interleaved stereo at 48 kHz (an MP4's priming samples trimmed). */
function pcm(file: string): Float32Array {
  const result = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-i',
      file,
      '-f',
      'f32le',
      '-ar',
      String(RATE),
      '-ac',
      '2',
      'pipe:1',
    ],
    {
      maxBuffer: 1 << 30,
    },
  );
  if (result.status !== 0) throw new Error(`ffmpeg could not decode ${file}: ${result.stderr.toString().slice(-400)}`);
  const bytes = result.stdout;
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** Frames by which the decoded sound lags its source, searched within ±2048 on the source's loudest half second. */
function lag(source: Float32Array, decoded: Float32Array): number {
  const length = RATE / 2;
  let from = 0;
  let loudest = 0;
  for (let start = 2048; (start + length + 2048) * 2 <= source.length; start += length) {
    let energy = 0;
    for (let i = 0; i < length; i++) energy += source[(start + i) * 2]! ** 2;
    if (energy > loudest) [from, loudest] = [start, energy];
  }
  let best = 0;
  let bestScore = -Infinity;
  for (let d = -2048; d <= 2048; d++) {
    let score = 0;
    for (let i = 0; i < length; i++) score += source[(from + i) * 2]! * (decoded[(from + i + d) * 2] ?? 0);
    if (score > bestScore) [best, bestScore] = [d, score];
  }
  return best;
}

function shift(decoded: Float32Array, frames: number): Float32Array {
  return frames >= 0 ? decoded.subarray(frames * 2) : Float32Array.from([...new Float32Array(-frames * 2), ...decoded]);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
