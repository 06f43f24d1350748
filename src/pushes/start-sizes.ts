import type { VideoFrame } from '../media/sinks.js';

type Size = { width: number; height: number };

/**
 * The source picture size each transcoding pipeline started on: ffmpeg encodes at that size for its
 * whole life, scaling later frames to it. Told each keyframe, it says when the source has grown
 * past what the current pipeline makes (a browser whose bandwidth estimate grew); a source that
 * shrinks again is scaled up by ffmpeg, so the output does not flap with the publisher's bandwidth.
 */
export class StartSizes {
  readonly #sizes = new WeakMap<object, Size>();

  /** A keyframe given to `pipelines` (the first one each gets is what it starts on): the growth past `current`'s, if any. */
  grown(
    keyframe: VideoFrame,
    current: object | undefined,
    ...pipelines: (object | undefined)[]
  ): { from: Size; to: Size } | undefined {
    const size = keyframe.size;
    if (!size) return undefined;
    for (const pipe of [current, ...pipelines]) if (pipe && !this.#sizes.has(pipe)) this.#sizes.set(pipe, size);
    const from = current && this.#sizes.get(current);
    return from && (size.width > from.width || size.height > from.height) ? { from, to: size } : undefined;
  }
}
