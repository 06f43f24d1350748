import { GatewayError } from '../core/errors.js';
import { ffmpegQuietly } from '../ffmpeg/ffmpeg-process.js';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import { ivfFrameHeader, ivfHeader } from '../media/ivf.js';
import type { VideoFrame } from '../media/sinks.js';

/** Longest a snapshot's ffmpeg may take. */
const SNAPSHOT_TIMEOUT_MS = 5000;
/** A JPEG larger than this is not a snapshot of a video frame (an ffmpeg gone wrong). */
const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;

/**
 * The JPEG of each keyframe, made once: requests for the same keyframe share one decode, and its
 * picture is reused until the publisher has a newer keyframe (the old one is then collected with its
 * picture). A failed decode is forgotten so that the next request tries again.
 */
export class KeyframePictures {
  readonly #pictures = new WeakMap<VideoFrame, Promise<Buffer>>();

  constructor(
    private readonly ffmpeg: FfmpegSupervisor,
    private readonly ffmpegPath: string,
  ) {}

  jpeg(keyframe: VideoFrame): Promise<Buffer> {
    let picture = this.#pictures.get(keyframe);
    if (!picture) {
      picture = snapshotJpeg(keyframe, this.ffmpeg, this.ffmpegPath);
      this.#pictures.set(keyframe, picture);
      picture.catch(() => this.#pictures.delete(keyframe));
    }
    return picture;
  }
}

/**
 * The keyframe as a JPEG, decoded on demand by a short-lived ffmpeg that reads it as IVF on stdin
 * (H.264 as Annex B, VP8, VP9) and writes one picture: nothing is decoded while nobody asks.
 */
async function snapshotJpeg(keyframe: VideoFrame, ffmpeg: FfmpegSupervisor, ffmpegPath: string): Promise<Buffer> {
  const args = [
    ...ffmpegQuietly('pipe'),
    '-f',
    'ivf',
    '-i',
    'pipe:0',
    '-frames:v',
    '1',
    '-c:v',
    'mjpeg',
    '-q:v',
    '3',
    '-pix_fmt',
    'yuvj420p',
    '-f',
    'image2pipe',
    'pipe:1',
  ];
  const child = ffmpeg.spawn(ffmpegPath, args);
  const chunks: Buffer[] = [];
  const lines: string[] = [];
  let size = 0;
  child.on('output', (data) => {
    size += data.length;
    if (size <= MAX_SNAPSHOT_BYTES) chunks.push(data);
  });
  child.on('line', (line) => lines.push(line));
  const bitstream = keyframe.bitstream();
  child.write(Buffer.concat([ivfHeader(keyframe.codec), ivfFrameHeader(bitstream.length, 0), bitstream]));
  child.endInput(); // it decodes the one picture, writes it and exits
  const timer = setTimeout(() => void child.kill(), SNAPSHOT_TIMEOUT_MS);
  await child.closed; // its exit can be known before the picture on its stdout has been read
  clearTimeout(timer);
  if (child.exitCode !== 0 || size === 0 || size > MAX_SNAPSHOT_BYTES) {
    throw new GatewayError(
      'internal',
      `the snapshot could not be made: ${lines.at(-1) ?? `ffmpeg ended with ${child.exitCode}`}`,
    );
  }
  return Buffer.concat(chunks);
}
