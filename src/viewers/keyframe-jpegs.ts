import { GatewayError } from '../core/errors.js';
import { ffmpegQuietly } from '../ffmpeg/ffmpeg-process.js';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import { IVF_CLOCK_RATE, ivfFrameHeader, ivfHeader } from '../media/ivf.js';
import type { VideoFrame } from '../media/sinks.js';

/** Longest one ffmpeg may take, and what each picture in it adds. */
const TIMEOUT_MS = 5000;
const TIMEOUT_PER_PICTURE_MS = 500;
/** A JPEG larger than this is not a picture of a video frame (an ffmpeg gone wrong). */
const MAX_JPEG_BYTES = 16 * 1024 * 1024;
/** The keyframes' spacing in the IVF stream (one frame at 30 fps): an even, increasing timeline. */
const PTS_STEP = IVF_CLOCK_RATE / 30;

/**
 * Keyframes decoded into JPEGs by one short-lived ffmpeg, in order, at most `width` wide (0: their
 * own size): an IVF stream of them on its stdin (H.264 as Annex B, VP8, VP9; one codec and one
 * picture size, as its JPEG encoder is opened once) and multipart JPEG (`mpjpeg`, each picture with
 * its length) on its stdout. One thread each (the pictures are a few, and the machine's cores carry
 * the media); frames passed through as they come (`-vsync passthrough`: none dropped or doubled).
 * ffmpeg's own start costs several times a picture's decode, which is why keyframes are decoded
 * together. Throws `PicturesError` when ffmpeg fails, is stopped, or gives another number of
 * pictures than it was given: the caller cannot tell which is which then.
 */
export async function keyframeJpegs(
  keyframes: readonly VideoFrame[],
  width: number,
  ffmpeg: FfmpegSupervisor,
  ffmpegPath: string,
): Promise<Buffer[]> {
  const args = [
    ...ffmpegQuietly('pipe'),
    '-threads',
    '1',
    '-f',
    'ivf',
    '-i',
    'pipe:0',
    // Made smaller, never larger, the height kept in proportion (and even).
    ...(width > 0 ? ['-vf', `scale='min(${width},iw)':-2`] : []),
    '-vsync',
    'passthrough',
    '-threads',
    '1',
    '-c:v',
    'mjpeg',
    '-q:v',
    '3',
    '-pix_fmt',
    'yuvj420p',
    '-f',
    'mpjpeg',
    'pipe:1',
  ];
  const child = ffmpeg.spawn(ffmpegPath, args);
  const chunks: Buffer[] = [];
  const lines: string[] = [];
  const limit = MAX_JPEG_BYTES * keyframes.length;
  let size = 0;
  child.on('output', (data) => {
    size += data.length;
    if (size <= limit) chunks.push(data);
  });
  child.on('line', (line) => lines.push(line));
  const input: Buffer[] = [ivfHeader(keyframes[0]!.codec)];
  keyframes.forEach((keyframe, i) => {
    const bitstream = keyframe.bitstream();
    input.push(ivfFrameHeader(bitstream.length, i * PTS_STEP), bitstream);
  });
  child.write(Buffer.concat(input));
  child.endInput(); // it decodes the pictures, writes them and exits
  const timer = setTimeout(() => void child.kill(), TIMEOUT_MS + TIMEOUT_PER_PICTURE_MS * keyframes.length);
  await child.closed; // its exit can be known before the pictures on its stdout have been read
  clearTimeout(timer);
  const jpegs = child.exitCode === 0 && size <= limit ? mpjpegParts(Buffer.concat(chunks)) : [];
  // A keyframe alone may show more than one picture (a superframe's layers): the first is its own.
  if (keyframes.length === 1 && jpegs.length > 1) jpegs.length = 1;
  if (jpegs.length !== keyframes.length) {
    const why = child.exitCode !== 0 ? `ffmpeg ended with ${child.exitCode}` : `${jpegs.length} of ${keyframes.length}`;
    throw new PicturesError(`the snapshot could not be made: ${lines.at(-1) ?? why}`, child.exitCode === null);
  }
  return jpegs;
}

/** Pictures not made; `killed`: ffmpeg was stopped (its time up, the gateway closing), not failed on its input. */
export class PicturesError extends GatewayError {
  constructor(
    message: string,
    readonly killed: boolean,
  ) {
    super('internal', message);
  }
}

/**
 * The JPEGs of ffmpeg's multipart output: each part's headers, ended by an empty line, give its
 * `Content-length`; the bytes follow. Parts that are not a JPEG, or cut short, end the list.
 */
export function mpjpegParts(data: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const headersEnd = data.indexOf('\r\n\r\n', at, 'latin1');
    if (headersEnd < 0) break;
    const length = /content-length:\s*(\d+)/i.exec(data.toString('latin1', at, headersEnd))?.[1];
    const start = headersEnd + 4;
    if (length === undefined || start + Number(length) > data.length) break;
    const jpeg = data.subarray(start, start + Number(length));
    if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) break;
    parts.push(jpeg);
    at = start + jpeg.length;
  }
  return parts;
}
