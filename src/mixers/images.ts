import { invalid } from '../core/errors.js';
import { ffmpegQuietly } from '../ffmpeg/ffmpeg-process.js';
import type { Overlay } from '../pipeline/overlays.js';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import { IMAGE, resolveImageFiles, resolveMediaFile } from '../security/media-files.js';
import { COLOUR, pictureBytes, yuvOf, type Yuv } from './canvas.js';
import type { Size } from './layout.js';
import type { MixerStartup } from './requests.js';

/** How long an image may take to decode. */
const DECODE_TIMEOUT_MS = 5000;

/**
 * A mixer's background and overlays as its request names them, checked before anything starts:
 * a background colour, or an image file of the media directory decoded once to the picture's size
 * (scaled to fill it, cut to its shape); the overlays' files found. A file
 * that is missing or not an image is refused naming its field.
 */
export async function mixerImages(
  request: Pick<MixerStartup, 'background' | 'watermark' | 'overlays' | 'width' | 'height'>,
  deps: { mediaDir: string; supervisor: FfmpegSupervisor; ffmpegPath: string },
): Promise<{ background: Yuv | Buffer; overlays: Overlay[] }> {
  const size = { width: request.width, height: request.height };
  const background = COLOUR.test(request.background)
    ? yuvOf(request.background)
    : await decodePicture(
        await resolveMediaFile(deps.mediaDir, request.background, 'background', IMAGE),
        size,
        deps,
        'background',
      );
  const wanted = [
    ...(request.watermark
      ? [{ file: request.watermark, field: 'watermark', x: 0.83, y: 0.03, width: 0.14, opacity: 0.85 }]
      : []),
    ...(request.overlays ?? []).map((o, i) => ({ ...o, field: `overlays.${i}.file` })),
  ];
  const overlays = await resolveImageFiles(deps.mediaDir, wanted);
  return { background, overlays };
}

/** An image file as one 4:2:0 picture of `size`, decoded by a short-lived ffmpeg. */
async function decodePicture(
  path: string,
  size: Size,
  deps: { supervisor: FfmpegSupervisor; ffmpegPath: string },
  field: string,
): Promise<Buffer> {
  const { width, height } = size;
  const ffmpeg = deps.supervisor.spawn(deps.ffmpegPath, [
    ...ffmpegQuietly('file'),
    ...['-i', path],
    ...[
      '-vf',
      `scale=${width}:${height}:force_original_aspect_ratio=increase,crop=${width}:${height}`,
      '-frames:v',
      '1',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'yuv420p',
      'pipe:1',
    ],
  ]);
  const parts: Buffer[] = [];
  ffmpeg.on('output', (data) => parts.push(data));
  const timer = setTimeout(() => void ffmpeg.kill(), DECODE_TIMEOUT_MS);
  await ffmpeg.closed;
  clearTimeout(timer);
  const picture = Buffer.concat(parts);
  if (picture.length !== pictureBytes(width, height)) throw invalid(field, 'cannot be decoded as an image');
  return picture;
}
