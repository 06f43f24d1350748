import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { RtmpMediaMessage } from '../kit/rtmp-receiver.js';

const run = promisify(execFile);
const AAC_FRAME = 1024;

/** An audio message as the RTMP server got it, with the level of its decoded samples. */
export interface HeardFrame {
  arrivalMs: number;
  timestamp: number;
  /** RMS of the frame's samples, dBFS. */
  db: number;
}

/**
 * Decodes the AAC messages an RTMP server received (sequence header first) with ffmpeg and gives
 * each its level, so the moment the audio changed can be matched to the moment it arrived.
 */
export async function levelsOfFrames(messages: RtmpMediaMessage[], workFile: string): Promise<HeardFrame[]> {
  const header = messages.find((m) => m.sequenceHeader);
  const frames = messages.filter((m) => !m.sequenceHeader);
  if (!header || frames.length === 0) throw new Error('no AAC received');
  await writeFile(workFile, flv([header, ...frames]));
  const { stdout } = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', workFile, '-f', 's16le', '-ac', '1', '-ar', '48000', 'pipe:1'], {
    encoding: 'buffer',
    maxBuffer: 256 * 1024 * 1024,
  });
  const pcm = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
  // The decoder drops the encoder's priming: output sample 0 is the first frame's content.
  return frames.map((m, k) => {
    let sum = 0;
    const from = k * AAC_FRAME;
    const to = Math.min(pcm.length, from + AAC_FRAME);
    for (let i = from; i < to; i++) sum += pcm[i]! * pcm[i]!;
    const rms = to > from ? Math.sqrt(sum / (to - from)) / 32768 : 0;
    return { arrivalMs: m.arrivalMs, timestamp: m.timestamp, db: rms > 0 ? 20 * Math.log10(rms) : -Infinity };
  });
}

/**
 * How long after `commandMs` the first frame of a change arrived: the first frame arriving after
 * the command's request was sent that satisfies `changed`, whose predecessor did not.
 */
export function changeLatency(frames: HeardFrame[], sentMs: number, answeredMs: number, changed: (db: number) => boolean): number | undefined {
  for (let k = 1; k < frames.length; k++) {
    const frame = frames[k]!;
    if (frame.arrivalMs < sentMs) continue;
    if (changed(frame.db) && !changed(frames[k - 1]!.db)) return frame.arrivalMs - answeredMs;
  }
  return undefined;
}

function flv(messages: RtmpMediaMessage[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x46, 0x4c, 0x56, 1, 0x04, 0, 0, 0, 9, 0, 0, 0, 0])];
  for (const m of messages) {
    const tag = Buffer.alloc(11);
    tag[0] = 8;
    tag.writeUIntBE(m.data.length, 1, 3);
    tag.writeUIntBE(m.timestamp & 0xffffff, 4, 3);
    tag[7] = (m.timestamp >>> 24) & 0xff;
    const size = Buffer.alloc(4);
    size.writeUInt32BE(11 + m.data.length);
    parts.push(tag, m.data, size);
  }
  return Buffer.concat(parts);
}
