import { z } from 'zod';

/** Most images laid over one picture. */
const MAX_OVERLAYS = 4;

/** An image over a picture, as a request names it: a file of `media_dir`, its place and width as fractions of the picture's. */
const overlayRequestSchema = z.strictObject({
  file: z.string().min(1).max(255).describe('an image file (PNG or JPEG) of media_dir'),
  x: z.number().min(0).max(1).default(0.02),
  y: z.number().min(0).max(1).default(0.02),
  width: z.number().min(0.01).max(1).default(0.15),
  opacity: z.number().min(0).max(1).default(1),
});
export const overlaysSchema = z.array(overlayRequestSchema).max(MAX_OVERLAYS);

/** An image over the picture: its file found, its place and width as fractions of the picture's, its opacity 0 to 1. */
export interface Overlay {
  path: string;
  x: number;
  y: number;
  width: number;
  opacity: number;
}

/**
 * ffmpeg's inputs of `overlays`, in order: each image one frame, which the overlay repeats over
 * every picture after it (its `eof_action`), whatever the pictures' timestamps.
 */
export function overlayInputs(overlays: readonly Overlay[]): string[] {
  return overlays.flatMap((overlay) => ['-i', overlay.path]);
}

/**
 * The filters that lay `overlays` over the video `base` (a filter-graph label), in order, the first
 * image being ffmpeg's input `firstInput` (see `overlayInputs`): each made see-through, scaled to
 * its width of the picture (whatever size the picture has, or comes to have) keeping its shape,
 * placed at its fractions. The result is `[out]`, 4:2:0.
 */
export function overlayGraph(base: string, overlays: readonly Overlay[], firstInput: number, out: string): string[] {
  const filters: string[] = [];
  let last = base;
  overlays.forEach((overlay, i) => {
    filters.push(
      `[${firstInput + i}:v]format=rgba,colorchannelmixer=aa=${overlay.opacity}[image${i}]`,
      // scale2ref: `iw` is the picture's width (the reference), `main_a` the image's shape.
      `[image${i}][${last}]scale2ref=w=max(2\\,trunc(iw*${overlay.width}/2)*2):h=max(2\\,trunc(ow/main_a/2)*2)[scaled${i}][base${i}]`,
      `[base${i}][scaled${i}]overlay=x=trunc(main_w*${overlay.x}/2)*2:y=trunc(main_h*${overlay.y}/2)*2:format=auto[over${i}]`,
    );
    last = `over${i}`;
  });
  filters.push(`[${last}]format=yuv420p[${out}]`);
  return filters;
}
