import { Cea608Writer, PAD_PAIR, type CaptionMode } from './cea608.js';
import { captionSei, withSei } from './sei.js';

/** A caption left this long (media time) with nothing after it is erased from the viewer's screen. */
const ERASE_AFTER_MS = 10_000;
/**
 * Captions a push holds before the frames captured at their time come (a push behind, or `at` in
 * the future); past this the oldest goes into the video at once.
 */
const MAX_WAITING = 64;

/** A caption on the stream's media clock: it goes on the first frame captured at or after `atMs`. */
export interface TimedCaption {
  text: string;
  final: boolean;
  /** Publisher clock (the gateway's monotonic clock, ms). */
  atMs: number;
}

/** A caption as it went into the video: the output's RTMP time of the frame that began it. */
export interface CaptionCue {
  timestamp: number;
  text: string;
  final: boolean;
}

/**
 * A push's captions: each waits for the first frame captured at its time (so it lands on the same
 * pictures on every push, however far behind a push's queue is), then becomes 608 pairs. From its
 * first caption on, every video frame the push sends carries an SEI with the pairs due (a null pair
 * when none are), so a platform sees one unbroken caption stream. A push that never had a caption
 * sends its frames untouched.
 */
export class CaptionTrack {
  readonly #writer: Cea608Writer;
  readonly #waiting: TimedCaption[] = [];
  #lastFrameMs: number | undefined;
  /** Media time of the frame that carried the last pair of the latest caption; undefined once erased. */
  #shownSince: number | undefined;

  /** `onCue`: each caption as it goes into the video. */
  constructor(
    private readonly onCue?: (cue: CaptionCue) => void,
    mode: CaptionMode = 'roll-up',
  ) {
    this.#writer = new Cea608Writer(mode);
  }

  /** A caption; interim text (`final` false) is written over by the next. */
  write(caption: TimedCaption): void {
    const waiting = this.#waiting;
    let at = waiting.length;
    while (at > 0 && waiting[at - 1]!.atMs > caption.atMs) at--;
    waiting.splice(at, 0, caption);
    if (waiting.length > MAX_WAITING) this.#begin(waiting.shift()!, this.#lastFrameMs ?? 0);
  }

  /** Captions that went into the video so far. */
  sent = 0;

  /** Characters sent as others (608 has no code for them). */
  get replaced(): number {
    return this.#writer.replaced;
  }

  /** Times what waited was dropped: more than 20 s of pairs behind (a push sending no frames). */
  get dropped(): number {
    return this.#writer.dropped;
  }

  /**
   * The frame's FLV body (AVC NAL units) with this frame's pairs inserted before its first slice:
   * `timestampMs` where it goes in the output, `captureMs` when it was captured (publisher clock).
   */
  frame(body: Buffer, timestampMs: number, captureMs: number): Buffer {
    this.#lastFrameMs = timestampMs;
    const waiting = this.#waiting;
    while (waiting.length > 0 && waiting[0]!.atMs <= captureMs) this.#begin(waiting.shift()!, timestampMs);
    // One field-1 pair a frame, as ATSC A/53 allows 608 data at most; the rest waits for the next frames.
    const pairs = this.#writer.take(1);
    if (pairs.length > 0 && this.#writer.pending === 0) this.#shownSince = timestampMs;
    else if (this.#shownSince !== undefined && timestampMs - this.#shownSince >= ERASE_AFTER_MS) {
      this.#writer.erase();
      this.#shownSince = undefined;
    }
    return withSei(body, captionSei(pairs.length > 0 ? pairs : [PAD_PAIR]));
  }

  #begin(caption: TimedCaption, timestamp: number): void {
    this.sent++;
    this.#writer.write(caption.text, caption.final);
    this.#shownSince = undefined;
    this.onCue?.({ timestamp, text: caption.text, final: caption.final });
  }
}
