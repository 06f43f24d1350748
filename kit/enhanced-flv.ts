import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { decodeAmf0, type Amf0Value } from '../src/media/amf0.js';
import { FlvReader, FlvTagType, readExVideoHeader, VideoPacketType } from '../src/media/flv.js';
import { ivfFrameHeader, ivfHeader } from '../src/media/ivf.js';

const run = promisify(execFile);

/** One video tag of an FLV file, as Enhanced RTMP describes it. */
export interface ExVideoTag {
  timestamp: number;
  packetType: number;
  fourCc: string;
  key: boolean;
  /** After the FourCC. */
  data: Buffer;
}

/** What an FLV file received over Enhanced RTMP holds: its onMetaData, its video tags, its audio tags' count. */
export interface EnhancedFlv {
  metadata: Record<string, Amf0Value> | undefined;
  video: ExVideoTag[];
  /** Video tags in FLV's own (legacy) header. */
  legacyVideo: number;
  audio: number;
}

export async function readEnhancedFlv(file: string): Promise<EnhancedFlv> {
  const tags = new FlvReader().push(await readFile(file));
  const found: EnhancedFlv = { metadata: undefined, video: [], legacyVideo: 0, audio: 0 };
  for (const tag of tags) {
    if (tag.type === FlvTagType.AUDIO) found.audio++;
    else if (tag.type === FlvTagType.SCRIPT) {
      // As sent (`@setDataFrame`, then the name) or as a file writes it.
      const values = decodeAmf0(tag.body);
      const at = values.indexOf('onMetaData');
      const value = at >= 0 ? values[at + 1] : undefined;
      if (value && typeof value === 'object') found.metadata ??= value as Record<string, Amf0Value>;
    } else if (tag.type === FlvTagType.VIDEO) {
      const ex = readExVideoHeader(tag.body);
      if (!ex) found.legacyVideo++;
      else found.video.push({ timestamp: tag.timestamp, ...ex, data: tag.body.subarray(5) });
    }
  }
  return found;
}

/** The AV1 coded frames of `video` as an IVF file (the OBUs as they came, timestamps in ms to 90 kHz). */
export function av1Ivf(video: readonly ExVideoTag[]): Buffer {
  const frames = video.filter((tag) => tag.fourCc === 'av01' && tag.packetType === VideoPacketType.CodedFrames);
  return Buffer.concat([
    ivfHeader('AV1'),
    ...frames.flatMap((tag) => [ivfFrameHeader(tag.data.length, tag.timestamp * 90), tag.data]),
  ]);
}

/** A frame as the decoder gave it. */
export interface DecodedFrame {
  width: number;
  height: number;
  key: boolean;
}

/**
 * Decodes AV1 in IVF with Debian's ffmpeg (libdav1d), stopping at the first error (`-xerror`): the
 * frames it gave, in order, as its `showinfo` filter tells them.
 */
export async function decodeAv1(ivf: Buffer, file: string): Promise<DecodedFrame[]> {
  await writeFile(file, ivf);
  try {
    const { stderr } = await run(
      'ffmpeg',
      ['-v', 'info', '-xerror', '-c:v', 'libdav1d', '-i', file, '-vf', 'showinfo', '-f', 'null', '-'],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    return [...stderr.matchAll(/\] n: *\d+ .*? s:(\d+)x(\d+) .*? iskey:(\d)/g)].map((m) => ({
      width: Number(m[1]),
      height: Number(m[2]),
      key: m[3] === '1',
    }));
  } finally {
    await rm(file, { force: true });
  }
}
