import type { Size, Slot } from './layout.js';

/** A colour in Y'CbCr (BT.601, limited range), as 4:2:0 video stores it. */
export interface Yuv {
  y: number;
  u: number;
  v: number;
}

/** A colour as the API takes it. */
export const COLOUR = /^#[0-9a-fA-F]{6}$/;

/** `#rrggbb` to Y'CbCr (BT.601, limited range: Y' 16-235, Cb and Cr 16-240). */
export function yuvOf(colour: string): Yuv {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  if (!m) throw new RangeError(`not a #rrggbb colour: ${colour}`);
  const [r, g, b] = [m[1]!, m[2]!, m[3]!].map((hex) => parseInt(hex, 16));
  return {
    y: Math.round(16 + (65.481 * r! + 128.553 * g! + 24.966 * b!) / 255),
    u: Math.round(128 + (-37.797 * r! - 74.203 * g! + 112.0 * b!) / 255),
    v: Math.round(128 + (112.0 * r! - 93.786 * g! - 18.214 * b!) / 255),
  };
}

/** Bytes of a 4:2:0 picture of even `width` and `height`: the Y' plane, then Cb and Cr at a quarter each. */
export const pictureBytes = (width: number, height: number): number => (width * height * 3) / 2;

/** Pictures kept for reuse: the encoder holds at most a few (the mixer skips a picture beyond that). */
const SPARE_PICTURES = 6;

/**
 * The mixer's output picture, 4:2:0 planar (yuv420p), made anew each frame: the background, then
 * each input's latest picture copied into its slot (the input's decoder already scaled it to the
 * slot's size, letterboxed), or a placeholder where an input has none. Row copies only: nothing is
 * scaled or converted here.
 */
export class Canvas {
  /** The picture being made: a buffer the encoder no longer holds, so one handed to it is never written again. */
  data: Buffer;
  readonly #background: Buffer;
  /** Pictures the encoder has read, for the next frames. */
  readonly #free: Buffer[] = [];

  /** `background`: one colour, or a picture of the canvas's size. */
  constructor(
    readonly size: Size,
    background: Yuv | Buffer,
  ) {
    const { width, height } = size;
    if (width % 2 || height % 2) throw new RangeError(`a 4:2:0 picture has an even size, not ${width}x${height}`);
    this.data = Buffer.alloc(pictureBytes(width, height));
    if (Buffer.isBuffer(background)) {
      if (background.length !== this.data.length)
        throw new RangeError(`a ${width}x${height} background is ${this.data.length} bytes, not ${background.length}`);
      this.#background = background;
    } else {
      this.#background = Buffer.alloc(this.data.length);
      fillPlanes(this.#background, width, height, { x: 0, y: 0, width, height }, background);
    }
  }

  /** Starts a frame: the background everywhere. */
  clear(): void {
    const data = this.#free.pop() ?? Buffer.allocUnsafe(this.#background.length);
    this.#background.copy(data);
    this.data = data;
  }

  /** `picture` (a `data` of an earlier frame) is no longer held by the encoder: it can be made again. */
  release(picture: Buffer): void {
    if (picture.length === this.#background.length && this.#free.length < SPARE_PICTURES) this.#free.push(picture);
  }

  /**
   * Copies `picture` (yuv420p, `size`) centred into `slot`, what falls outside the slot left out: the
   * slot's own size as its decoder makes it, or, for the moment after the layout changed, the
   * size it had before.
   */
  draw(slot: Slot, picture: Buffer, size: Size): void {
    if (picture.length !== pictureBytes(size.width, size.height))
      throw new RangeError(
        `a ${size.width}x${size.height} picture is ${pictureBytes(size.width, size.height)} bytes, not ${picture.length}`,
      );
    const canvas = this.size;
    // The picture's top left on the canvas, even; the part of it inside the slot and the canvas.
    const left = slot.x + 2 * Math.floor((slot.width - size.width) / 4);
    const top = slot.y + 2 * Math.floor((slot.height - size.height) / 4);
    const x0 = Math.max(left, slot.x, 0);
    const y0 = Math.max(top, slot.y, 0);
    const x1 = Math.min(left + size.width, slot.x + slot.width, canvas.width);
    const y1 = Math.min(top + size.height, slot.y + slot.height, canvas.height);
    if (x1 <= x0 || y1 <= y0) return;
    const lumaPlane = canvas.width * canvas.height;
    const pictureLuma = size.width * size.height;
    for (let y = y0; y < y1; y++) {
      const from = (y - top) * size.width + (x0 - left);
      picture.copy(this.data, y * canvas.width + x0, from, from + (x1 - x0));
    }
    for (let y = y0 / 2; y < y1 / 2; y++) {
      const at = y * (canvas.width / 2) + x0 / 2;
      const from = (y - top / 2) * (size.width / 2) + (x0 - left) / 2;
      const count = (x1 - x0) / 2;
      picture.copy(this.data, lumaPlane + at, pictureLuma + from, pictureLuma + from + count);
      picture.copy(this.data, lumaPlane * 1.25 + at, pictureLuma * 1.25 + from, pictureLuma * 1.25 + from + count);
    }
  }

  /** Fills `slot` with one colour: an input without a picture (lost, or not yet there). */
  fill(slot: Slot, colour: Yuv): void {
    fillPlanes(this.data, this.size.width, this.size.height, slot, colour);
  }
}

function fillPlanes(data: Buffer, width: number, height: number, slot: Slot, colour: Yuv): void {
  const rows = Math.min(slot.height, height - slot.y);
  const columns = Math.min(slot.width, width - slot.x);
  for (let row = 0; row < rows; row++) {
    const at = (slot.y + row) * width + slot.x;
    data.fill(colour.y, at, at + columns);
  }
  const cb = width * height;
  const cr = cb + cb / 4;
  for (let row = 0; row < rows / 2; row++) {
    const at = (slot.y / 2 + row) * (width / 2) + slot.x / 2;
    data.fill(colour.u, cb + at, cb + at + columns / 2);
    data.fill(colour.v, cr + at, cr + at + columns / 2);
  }
}
