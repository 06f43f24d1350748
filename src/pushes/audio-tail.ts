import { FlvTagType, isAudioFrameTag, type FlvTag } from '../media/flv.js';
import type { Pipeline, TagSource } from '../pipeline/pipeline.js';
import type { TagWriter } from './tag-writer.js';

/** The longest the still picture's sound goes on after live video took over from it. */
const TAIL_MAX_MS = 1000;
/** A frame is taken to meet the next one within this (ms): AAC frames are 21.33 ms, timestamps whole ms. */
const ROUNDING_MS = 1;

/**
 * The still picture's sound after a pipeline took its video over. The still's ffmpeg lets its audio
 * out with its video, interleaved in one FLV output, and its video is placed from when its first
 * frames came out, its audio from its first sample: its last sound out is some 300 ms behind its
 * last frame. The pipeline that takes over is placed after that frame, so closing the still at once
 * would leave the sound in between unsent, a gap in the audio at every return from standby. The
 * still goes on for its sound alone until it reaches the new pipeline's first (`untilMs`, on the
 * publisher's clock), and the new pipeline's audio is held until then, at most TAIL_MAX_MS.
 */
export class AudioTail {
  /**
   * The tail of `still` when its sound is behind where `pipe`, taking its video over, starts its own;
   * undefined when it is not (it is then closed at once). `end` is told once the tail is over, with
   * `pipe`'s audio held meanwhile.
   */
  static after(
    still: Pipeline,
    pipe: Pipeline,
    writer: TagWriter,
    end: (held: FlvTag[]) => void,
  ): AudioTail | undefined {
    const startMs = pipe.source.audioStartMs;
    if (!still.source.still || still.source.audioOnly || startMs === undefined) return undefined;
    const untilMs = startMs + pipe.source.shiftMs;
    const { timeline, audioFrameMs } = writer;
    if (timeline.last('audio') + audioFrameMs >= timeline.at(untilMs) - ROUNDING_MS) return undefined;
    return new AudioTail(still, untilMs, (tag) => writer.writeTag(tag, still.source), end);
  }

  readonly #held: FlvTag[] = [];
  readonly #timer: NodeJS.Timeout;
  #ended = false;

  /** `write` sends a tag of the still; `end` is told once the tail is over, with the new pipeline's audio held meanwhile. */
  private constructor(
    readonly still: Pipeline,
    private readonly untilMs: number,
    private readonly write: (tag: FlvTag) => void,
    private readonly end: (held: FlvTag[]) => void,
  ) {
    still.source.audioOnly = true;
    this.#timer = setTimeout(() => this.finish(), TAIL_MAX_MS);
  }

  /** Tags of the still: its sound goes out up to the new pipeline's first; reaching it ends the tail. */
  stillTags(tags: FlvTag[]): void {
    for (const tag of tags) {
      if (this.#ended) return;
      const endMs = isAudioFrameTag(tag) ? audioEndMs(tag, this.still.source) : undefined;
      if (endMs !== undefined && endMs > this.untilMs + ROUNDING_MS) return this.finish();
      this.write(tag);
      if (endMs !== undefined && endMs >= this.untilMs - ROUNDING_MS) this.finish();
    }
  }

  /** Whether a tag of the pipeline that took over waits for the tail to end (its audio); held if so. */
  holds(tag: FlvTag): boolean {
    if (this.#ended || tag.type !== FlvTagType.AUDIO) return false;
    this.#held.push(tag);
    return true;
  }

  /** Ends the tail: the still is let go, the new pipeline's audio goes out. */
  finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    this.end(this.#held);
  }
}

/**
 * Publisher-clock time at which an AAC frame of `source` ends (undefined before its audio began):
 * its FLV timestamp, one frame (the encoder's priming, moved to time 0) after where it is placed. A
 * still frame goes out when it ends where the new pipeline's first begins or before: they do not
 * overlap, and at most a frame is left between; the one that meets it ends the tail.
 */
export function audioEndMs(tag: FlvTag, source: TagSource): number | undefined {
  const startMs = source.audioStartMs;
  return startMs === undefined ? undefined : startMs + source.shiftMs + tag.timestamp;
}
