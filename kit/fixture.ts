import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { clip } from './programme-audio.js';
import { temporalUnits } from './av1-packetizer.js';
import { lowOverheadObus, OBU_TEMPORAL_DELIMITER } from '../src/media/av1.js';

const OBU_SEQUENCE_HEADER = 1;

/**
 * Pre-encoded media for synthetic publishers: 10 s of 1280x720 at 30 fps, constrained-baseline
 * H.264 at ~2.5 Mb/s with a keyframe every 2 s (what Chromium sends), and 20 ms Opus frames.
 * Made locally with ffmpeg the first time it is needed, never downloaded.
 */
export interface Fixture {
  fps: number;
  /** H.264 (by default), or AV1. */
  codec?: 'H264' | 'AV1';
  /**
   * Access units in decoding order; each is its NAL units without start codes (H.264), or its
   * temporal unit without temporal delimiter as its only item (AV1).
   */
  video: { nals: Buffer[]; key: boolean }[];
  /** Opus packets, 20 ms each. */
  audio: Buffer[];
  audioFrameMs: number;
}

const FIXTURE_FPS = 30;
const SECONDS = 10;
const AUDIO_FRAME_MS = 20;

/** Another picture and tone than the benchmark's: `picture` a lavfi video source of 10 s at `fps` (30 by default), `toneHz` the sine. */
export interface FixtureLook {
  tag: string;
  picture: string;
  toneHz: number;
  fps?: number;
  /** Seconds between keyframes (2 by default, as Chromium sends): a hardware encoder's 6 s, say. */
  keyframeS?: number;
  /** Instead of the tone, what people send: speech over music (kit/programme-audio.ts). */
  sound?: 'programme';
  /** AV1 (libaom, real-time) instead of H.264. */
  codec?: 'AV1';
}

const STANDARD: FixtureLook = {
  tag: '720p30',
  picture: `testsrc2=s=1280x720:r=${FIXTURE_FPS}:d=${SECONDS},noise=alls=14:allf=t+u`,
  toneHz: 440,
};

/** The benchmark's: the standard picture, with speech over music rather than a tone (a tone flatters the AAC encoder). */
export const PROGRAMME: FixtureLook = { ...STANDARD, sound: 'programme' };

/** The benchmark's picture and sound in AV1 at the same bitrate, as Chromium sends it when asked. */
export const PROGRAMME_AV1: FixtureLook = { ...PROGRAMME, tag: '720p30-av1', codec: 'AV1' };

/** A picture of one colour (`#rrggbb`) at `size` and `fps`, and a tone: for telling inputs apart in a mixer's output. */
export function colourLook(colour: string, size: string, toneHz: number, fps = FIXTURE_FPS): FixtureLook {
  const tag = `${colour.slice(1)}-${size}-${toneHz}${fps === FIXTURE_FPS ? '' : `-${fps}fps`}`;
  return { tag, picture: `color=c=0x${colour.slice(1)}:s=${size}:r=${fps}:d=${SECONDS}`, toneHz, fps };
}

export function loadFixture(dir: string, look: FixtureLook = STANDARD): Fixture {
  const extension = look.codec === 'AV1' ? 'obu' : 'h264';
  const videoPath = join(
    dir,
    look.tag === STANDARD.tag ? `video-720p${FIXTURE_FPS}.h264` : `video-${look.tag}.${extension}`,
  );
  const audioPath = join(
    dir,
    look.sound ? `audio-${look.sound}.ogg` : look === STANDARD ? 'audio-sine.ogg' : `audio-${look.toneHz}.ogg`,
  );
  // A file an ffmpeg that failed left empty is made again.
  const made = (path: string): boolean => existsSync(path) && statSync(path).size > 0;
  if (!made(videoPath) || !made(audioPath)) makeFixture(dir, videoPath, audioPath, look);
  return {
    fps: look.fps ?? FIXTURE_FPS,
    ...(look.codec ? { codec: look.codec } : {}),
    video: look.codec === 'AV1' ? av1Units(readFileSync(videoPath)) : accessUnits(readFileSync(videoPath)),
    audio: oggPackets(readFileSync(audioPath)).slice(2), // OpusHead and OpusTags come first
    audioFrameMs: AUDIO_FRAME_MS,
  };
}

function makeFixture(dir: string, videoPath: string, audioPath: string, look: FixtureLook): void {
  mkdirSync(dir, { recursive: true });
  const gop = Math.round((look.fps ?? FIXTURE_FPS) * (look.keyframeS ?? 2));
  if (look.codec === 'AV1') makeAv1(look, gop, videoPath);
  else makeH264(look, gop, videoPath);
  makeOpus(dir, look, audioPath);
}

/** AV1 from libaom in its real-time mode, as a browser's encoder, in the low-overhead format (`-f obu`). */
function makeAv1(look: FixtureLook, gop: number, videoPath: string): void {
  ffmpeg([
    ...['-f', 'lavfi', '-i', look.picture, '-c:v', 'libaom-av1', '-usage', 'realtime', '-cpu-used', '8'],
    ...['-row-mt', '1', '-pix_fmt', 'yuv420p', '-g', String(gop), '-keyint_min', String(gop)],
    ...['-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '1250k', '-f', 'obu', videoPath],
  ]);
}

function makeH264(look: FixtureLook, gop: number, videoPath: string): void {
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    look.picture,
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-profile:v',
    'baseline',
    '-level',
    '3.1',
    '-pix_fmt',
    'yuv420p',
    // aud=1 marks every access unit, so frames can be split without parsing slice headers.
    '-x264-params',
    `aud=1:keyint=${gop}:min-keyint=${gop}:scenecut=0:bframes=0`,
    '-b:v',
    '2500k',
    '-maxrate',
    '2500k',
    '-bufsize',
    '1250k',
    '-f',
    'h264',
    videoPath,
  ]);
}

function makeOpus(dir: string, look: FixtureLook, audioPath: string): void {
  ffmpeg([
    ...(look.sound
      ? ['-i', clip(dir, look.sound, SECONDS)]
      : ['-f', 'lavfi', '-i', `sine=f=${look.toneHz}:r=48000:d=${SECONDS}`]),
    '-ac',
    '2',
    '-c:a',
    'libopus',
    '-b:a',
    '64k',
    '-frame_duration',
    String(AUDIO_FRAME_MS),
    '-application',
    'audio',
    '-f',
    'ogg',
    audioPath,
  ]);
}

function ffmpeg(args: string[]): void {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffmpeg could not make the fixture: ${result.stderr || result.error}`);
}

const NAL_AUD = 9;
const NAL_SEI = 6;
const NAL_IDR = 5;

/** An AV1 stream's temporal units, each without its temporal delimiter: a keyframe's carries a sequence header. */
function av1Units(stream: Buffer): Fixture['video'] {
  return temporalUnits(stream).map((unit) => {
    const obus = [...lowOverheadObus(unit)].filter((obu) => obu.type !== OBU_TEMPORAL_DELIMITER);
    const start = obus[0] ? obus[0].end - obus[0].length : unit.length;
    return { nals: [unit.subarray(start)], key: obus.some((obu) => obu.type === OBU_SEQUENCE_HEADER) };
  });
}

/** Splits an Annex B stream into access units at each access unit delimiter; drops AUD and SEI. */
function accessUnits(stream: Buffer): Fixture['video'] {
  const units: Fixture['video'] = [];
  for (const nal of annexBNals(stream)) {
    const type = nal[0]! & 0x1f;
    if (type === NAL_AUD) units.push({ nals: [], key: false });
    else if (type !== NAL_SEI && units.length > 0) {
      const unit = units[units.length - 1]!;
      unit.nals.push(nal);
      if (type === NAL_IDR) unit.key = true;
    }
  }
  return units.filter((unit) => unit.nals.length > 0);
}

function annexBNals(stream: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < stream.length) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      if (start >= 0) nals.push(trimZeros(stream.subarray(start, i)));
      i += 3;
      start = i;
    } else i++;
  }
  if (start >= 0) nals.push(stream.subarray(start));
  return nals.filter((nal) => nal.length > 0);
}

/** A four-byte start code leaves a zero byte at the end of the preceding NAL unit. */
function trimZeros(nal: Buffer): Buffer {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

/** The packets of an Ogg stream with one logical stream (RFC 3533). */
export function oggPackets(file: Buffer): Buffer[] {
  const packets: Buffer[] = [];
  let pending: Buffer[] = [];
  let offset = 0;
  while (offset + 27 <= file.length) {
    if (file.toString('latin1', offset, offset + 4) !== 'OggS') throw new Error(`not an Ogg page at byte ${offset}`);
    const segments = file[offset + 26]!;
    const table = file.subarray(offset + 27, offset + 27 + segments);
    let data = offset + 27 + segments;
    for (const size of table) {
      pending.push(file.subarray(data, data + size));
      data += size;
      if (size < 255) {
        packets.push(Buffer.concat(pending));
        pending = [];
      }
    }
    offset = data;
  }
  return packets;
}
