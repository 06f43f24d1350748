import { Cea608Writer, PAD_PAIR } from './cea608.js';
import { captionSei, withSei } from './sei.js';

/** 608's rate is a pair per field 29.97 times a second: frames further apart than this carry two. */
const ONE_PAIR_MS = 40;
/** A caption left this long (media time) with nothing after it is erased from the viewer's screen. */
const ERASE_AFTER_MS = 10_000;

/**
 * A push's captions: from its first caption on, every video frame it sends carries an SEI with the
 * pairs due (a null pair when none are), so a platform sees one unbroken caption stream. A push
 * that never had a caption sends its frames untouched.
 */
export class CaptionTrack {
  readonly #writer = new Cea608Writer();
  #lastFrameMs: number | undefined;
  /** Media time of the frame that carried the last pair of the latest caption; undefined once erased. */
  #shownSince: number | undefined;

  /** A caption, sent from the next frame on; interim text (`final` false) is written over by the next. */
  write(text: string, final = true): void {
    this.#writer.write(text, final);
    this.#shownSince = undefined;
  }

  /** Characters sent as others (608 has no code for them). */
  get replaced(): number {
    return this.#writer.replaced;
  }

  /** The frame's FLV body (AVC NAL units) with this frame's pairs inserted before its first slice. */
  frame(body: Buffer, timestampMs: number): Buffer {
    const gapMs = this.#lastFrameMs === undefined ? 0 : timestampMs - this.#lastFrameMs;
    this.#lastFrameMs = timestampMs;
    const pairs = this.#writer.take(gapMs > ONE_PAIR_MS ? 2 : 1);
    if (pairs.length > 0 && this.#writer.pending === 0) this.#shownSince = timestampMs;
    else if (this.#shownSince !== undefined && timestampMs - this.#shownSince >= ERASE_AFTER_MS) {
      this.#writer.erase();
      this.#shownSince = undefined;
    }
    return withSei(body, captionSei(pairs.length > 0 ? pairs : [PAD_PAIR]));
  }
}
