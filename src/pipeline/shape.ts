import { z } from 'zod';
import { wcsNumber } from '../core/validation.js';

/**
 * A picture of another shape than the source's: a vertical rendition (9:16) for TikTok, Instagram
 * Live or YouTube Shorts beside the landscape one. The source is either cropped to the shape (its
 * window placed across what is cut off) or fitted whole into it, on a blurred copy of itself or a
 * colour.
 */

/** Most parts of a shape, `W:H`: 99:1 is no picture anyone wants, 4:1 is as far as it goes. */
const MOST_STRETCHED = 4;

export const aspectSchema = z
  .string()
  .regex(/^[1-9]\d?:[1-9]\d?$/, 'W:H, whole numbers to 99, such as 9:16, 1:1 or 4:5')
  .refine((text) => {
    const [w, h] = ratioOf(text);
    return w / h <= MOST_STRETCHED && h / w <= MOST_STRETCHED;
  }, `between 1:${MOST_STRETCHED} and ${MOST_STRETCHED}:1`)
  .describe('The picture\'s shape, W:H ("9:16" for vertical platforms): the push transcodes to it');

/** Where the crop window sits: named, or a fraction of what is cut off (0 the left or top edge). */
const CROP_PLACES = { left: 0, center: 0.5, right: 1 } as const;
const FRACTION = 'a fraction from 0 (the left or top edge) to 1';

export const cropSchema = z
  .union([z.enum(['center', 'left', 'right']), wcsNumber(z.number().min(0, FRACTION).max(1, FRACTION))], {
    error: 'center, left, right, or a fraction from 0 (the left or top edge) to 1',
  })
  .describe('With aspect: which part of the source is kept (default center), or a fraction 0 (left or top) to 1');

export const fitSchema = z
  .string()
  .regex(/^(blur|#[0-9a-fA-F]{6})$/, 'blur, or a #rrggbb colour')
  .describe('With aspect: the whole source fitted into the shape, on a blurred copy of itself (blur) or a colour');

/** What a request says of the shape, checked by its schema. */
export interface ShapeRequest {
  aspect?: string;
  crop?: 'center' | 'left' | 'right' | number;
  fit?: string;
  width?: number;
  height?: number;
}

/** The output picture: its even size, and either where the crop sits (0 to 1) or what fills around the source. */
export type PictureShape = { aspect: string; width: number; height: number } & (
  { crop: number } | { fill: 'blur' | `#${string}` }
);

/** The shorter side of a shaped picture when the request names no height (720x1280 for 9:16). */
const SHORT_SIDE = 720;
/** The largest side ffmpeg is asked to make, as for `width` and `height`. */
const LONGEST_SIDE = 4096;

/** The rules between the shape's fields, for a request schema's `superRefine`. */
export function checkShapeFields(request: ShapeRequest, context: z.RefinementCtx): void {
  const issue = (path: string, message: string): void => context.addIssue({ code: 'custom', path: [path], message });
  if (request.aspect === undefined) {
    if (request.crop !== undefined) issue('crop', 'is used only with aspect');
    if (request.fit !== undefined) issue('fit', 'is used only with aspect');
    return;
  }
  if (request.crop !== undefined && request.fit !== undefined) issue('fit', 'give crop or fit, not both');
  if (request.width) issue('width', 'is set by aspect: give height alone');
  if (!aspectSchema.safeParse(request.aspect).success) return; // told by the aspect's own check
  const { width } = shapeSize(request.aspect, request.height);
  if (width > LONGEST_SIDE)
    issue('height', `makes a picture ${width} wide with aspect ${request.aspect}, more than ${LONGEST_SIDE}`);
}

/** The even size of a picture of shape `aspect`: `height` tall, or its shorter side `SHORT_SIDE`. */
function shapeSize(aspect: string, height: number | undefined): { width: number; height: number } {
  const [w, h] = ratioOf(aspect);
  if (height) return { width: evenUp(Math.round((height * w) / h)), height: evenUp(height) };
  return w < h
    ? { width: SHORT_SIDE, height: evenUp(Math.round((SHORT_SIDE * h) / w)) }
    : { width: evenUp(Math.round((SHORT_SIDE * w) / h)), height: SHORT_SIDE };
}

/** The shape a request asks for, sized; undefined when it names no aspect. */
export function planShape(request: ShapeRequest): PictureShape | undefined {
  if (request.aspect === undefined) return undefined;
  const size = shapeSize(request.aspect, request.height);
  const where = request.crop ?? 'center';
  if (request.fit) return { aspect: request.aspect, ...size, fill: request.fit as 'blur' | `#${string}` };
  return { aspect: request.aspect, ...size, crop: typeof where === 'number' ? where : CROP_PLACES[where] };
}

/**
 * The filters that make the picture `input` into `shape` as `output` (filter-graph labels). The
 * crop is worked out on each frame's own size, so a source that changes size mid-stream (a browser
 * adapting to its bandwidth) keeps the same part in view, scaled to the same output.
 */
export function shapeGraph(shape: PictureShape, input: string, output: string): string[] {
  const { width: W, height: H } = shape;
  const [w, h] = ratioOf(shape.aspect);
  if ('crop' in shape) {
    const x = shape.crop;
    return [
      `[${input}]crop=w=trunc(min(iw\\,ih*${w}/${h})/2)*2:h=trunc(min(ih\\,iw*${h}/${w})/2)*2:x=(iw-ow)*${x}:y=(ih-oh)*${x},` +
        `scale=${W}:${H},setsar=1[${output}]`,
    ];
  }
  const inside = `scale=${W}:${H}:force_original_aspect_ratio=decrease:force_divisible_by=2`;
  if (shape.fill !== 'blur') {
    const colour = `0x${shape.fill.slice(1)}`;
    return [
      `[${input}]${inside},pad=${W}:${H}:x=trunc((ow-iw)/4)*2:y=trunc((oh-ih)/4)*2:color=${colour},setsar=1[${output}]`,
    ];
  }
  // The background: the source filling the shape, made small, blurred and scaled back (a blur at
  // an eighth of the size costs a sixty-fourth of one at full size, and looks the same).
  const small = { width: evenUp(Math.round(W / 8)), height: evenUp(Math.round(H / 8)) };
  return [
    `[${input}]split=2[${output}_back][${output}_front]`,
    `[${output}_back]scale=${small.width}:${small.height}:force_original_aspect_ratio=increase,` +
      `crop=${small.width}:${small.height},boxblur=4:2,scale=${W}:${H}[${output}_blurred]`,
    `[${output}_front]${inside}[${output}_fitted]`,
    `[${output}_blurred][${output}_fitted]overlay=x=trunc((W-w)/4)*2:y=trunc((H-h)/4)*2,setsar=1[${output}]`,
  ];
}

/** The parts of a shape, `W:H`. */
const ratioOf = (aspect: string): [number, number] => aspect.split(':').map(Number) as [number, number];

/** A picture's side made even, as 4:2:0 video needs. */
export const evenUp = (n: number): number => n + (n % 2);
