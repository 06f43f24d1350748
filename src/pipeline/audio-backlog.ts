import type { Logger } from 'pino';
import { PCM_SAMPLE_RATE } from '../audio/pcm.js';
import { monotonicMs } from '../core/clock.js';
import { FlvTagType, type FlvTag } from '../media/flv.js';
import { oggOpusSamples } from '../media/ogg.js';

/** PCM bytes per millisecond (48 kHz, stereo, 16-bit). */
const PCM_BYTES_PER_MS = (PCM_SAMPLE_RATE * 4) / 1000;
/**
 * Audio ffmpeg has not read beyond this (~1 s of PCM, or of Opus pages at up to 64 kbit/s) means
 * it falls behind, the machine out of CPU: what comes is discarded, counted and logged, until it
 * has read its backlog down to a quarter of that. The push goes on, its sound with a gap, rather
 * than its encoder started again, which would cost the starved machine more.
 */
const BEHIND_PCM_BYTES = PCM_SAMPLE_RATE * 4;
const BEHIND_OPUS_BYTES = 12 * 1024;
/**
 * What ffmpeg is never given more than to hold unread (~5 s of PCM; of Opus pages, far more): a
 * block that would take it past this is discarded whole, however little is unread. A thread
 * starved for seconds catches up on its silence in one block (seconds of PCM at once), which
 * written would leave ffmpeg too far behind to keep.
 */
const MAX_PCM_BYTES = 5 * PCM_SAMPLE_RATE * 4;
const MAX_OPUS_BYTES = 256 * 1024;

/**
 * One encoder's audio input when the encoder falls behind: whether what comes now is discarded,
 * how much was, and, for PCM (which carries no time), where ffmpeg's later tags must be moved on.
 */
export class AudioBacklog {
  /** Since when (monotonic ms) audio has been discarded; undefined while ffmpeg keeps up. */
  behindSince: number | undefined;
  /** Milliseconds of audio discarded. */
  discardedMs = 0;
  #discarding = false;
  /** PCM: ffmpeg's audio time (ms) of the next byte written, and where audio was discarded: its later tags are moved on by `addMs`. */
  #pcmMs = 0;
  readonly #pcmSkips: { atMs: number; addMs: number }[] = [];

  constructor(
    /** Its input is PCM (else Ogg Opus pages). */
    private readonly pcm: boolean,
    private readonly log: Logger,
  ) {}

  get discarding(): boolean {
    return this.#discarding;
  }

  /**
   * Whether ffmpeg, `backlog` bytes behind, is too far behind to be given `incoming` bytes more:
   * from past `BEHIND_*_BYTES`, or when they would take it past `MAX_*_BYTES`, until it has read
   * down to a quarter of `BEHIND_*_BYTES`; before its first output too (a starved machine starting
   * it), where its audio would otherwise pile up.
   */
  behind(backlog: number, incoming: number): boolean {
    const limit = this.pcm ? BEHIND_PCM_BYTES : BEHIND_OPUS_BYTES;
    const max = this.pcm ? MAX_PCM_BYTES : MAX_OPUS_BYTES;
    if (!this.#discarding && (backlog >= limit || backlog + incoming > max)) {
      this.#discarding = true;
      this.behindSince ??= monotonicMs();
      this.log.warn(
        { backlogBytes: backlog },
        'ffmpeg falls behind on the audio (the machine is out of CPU): audio is discarded until it catches up',
      );
    } else if (this.#discarding && backlog < limit / 4) {
      this.#discarding = false;
      this.behindSince = undefined;
      this.log.info({ audioDiscardedMs: Math.round(this.discardedMs) }, 'ffmpeg caught up on the audio');
    }
    return this.#discarding;
  }

  /** `data` went to ffmpeg. */
  written(data: Buffer): void {
    if (this.pcm) this.#pcmMs += data.length / PCM_BYTES_PER_MS;
  }

  /**
   * Leaves out audio ffmpeg cannot take now. Opus pages carry their time (the granule position):
   * ffmpeg's output has a gap there by itself. PCM has none: the tags ffmpeg makes after the point
   * are moved on by what was left out (`place`), so the sound stays with the pictures.
   */
  discard(data: Buffer): void {
    if (this.pcm) {
      const ms = data.length / PCM_BYTES_PER_MS;
      const before = this.#pcmSkips.at(-1)?.addMs ?? 0;
      this.#pcmSkips.push({ atMs: this.#pcmMs, addMs: before + ms });
      this.discardedMs += ms;
    } else this.discardedMs += oggOpusSamples(data) / (PCM_SAMPLE_RATE / 1000);
  }

  /** ffmpeg's tags, its audio moved on by the PCM discarded before it. */
  place(tags: FlvTag[]): FlvTag[] {
    return this.#pcmSkips.length > 0 ? tags.map((tag) => this.#afterSkips(tag)) : tags;
  }

  /** An audio tag moved on by the PCM discarded before it; skips all behind it are forgotten. */
  #afterSkips(tag: FlvTag): FlvTag {
    if (tag.type !== FlvTagType.AUDIO) return tag;
    const skips = this.#pcmSkips;
    let addMs = 0;
    for (const skip of skips) if (skip.atMs <= tag.timestamp) addMs = skip.addMs;
    // Every skip but the latest one passed is folded into it: the list stays as short as the backlog.
    while (skips.length > 1 && skips[1]!.atMs <= tag.timestamp) skips.shift();
    return addMs > 0 ? { ...tag, timestamp: Math.round(tag.timestamp + addMs) } : tag;
  }
}
