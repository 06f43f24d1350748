import { monotonicMs } from '../core/clock.js';
import { TIMELINE_LIMITS } from '../media/clock-mapping.js';
import { onTick } from '../core/tick.js';
import { PCM_CHANNELS } from './pcm.js';

/** Samples (48 kHz frames) per millisecond of the publisher's clock. */
const SAMPLES_PER_MS = 48;
/** A live packet missing for this long means the publisher's audio stalled: silence is written. */
const STALL_MS = 100;
/** While stalled, silence is written up to this far behind now, leaving room for late packets. */
const STALL_LAG_MS = 60;
/**
 * The most a packet of `frames` frames is stretched or squeezed to meet the one before: what a
 * sender's clock followed at its furthest (`TIMELINE_LIMITS.maxSkew`) opens between two packets,
 * plus a frame for rounding. A larger gap is a loss (silence fills it), a larger overlap a late packet.
 */
export function stretchLimit(frames: number): number {
  return Math.ceil(frames * TIMELINE_LIMITS.maxSkew) + 1;
}

/**
 * The `frames` interleaved stereo frames of `pcm`, resampled (linearly) to
 * `length` frames: a drifting sound card's 20 ms made 19.9 or 20.1, a step too small to hear.
 */
function stretchPcm(pcm: Int16Array, frames: number, length: number): Int16Array {
  const out = new Int16Array(length * PCM_CHANNELS);
  const ratio = length > 1 ? (frames - 1) / (length - 1) : 0;
  for (let i = 0; i < length; i++) {
    const x = i * ratio;
    const at = Math.floor(x);
    const next = Math.min(at + 1, frames - 1);
    const f = x - at;
    for (let c = 0; c < PCM_CHANNELS; c++) {
      const a = pcm[at * PCM_CHANNELS + c]!;
      const b = pcm[next * PCM_CHANNELS + c]!;
      out[i * PCM_CHANNELS + c] = Math.round(a + (b - a) * f);
    }
  }
  return out;
}

/**
 * One output's audio on one unbroken timeline: sample n is at `startMs + n / 48` on the
 * publisher's clock, so the encoder's output maps back exactly. A packet is placed by its capture
 * time; when the publisher's audio stops (or it never had any), silence keeps the timeline moving
 * in real time, a little behind now. What is written, and how, is the subclass's: PCM mixed
 * (`PcmTimeline`) or the publisher's Opus as it is (`OpusTimeline`).
 */
export abstract class AudioTimeline {
  muted = false;
  /** Samples written so far. */
  written = 0;
  /** Samples of live audio left out: late packets, or parts of them already written. */
  dropped = 0;
  /** Samples a drifting sender's packets were stretched (positive) or squeezed (negative) by, in all. */
  stretched = 0;

  protected readonly now: () => number;
  #startMs: number | undefined;
  #lastLiveAt = 0;
  #closed = false;
  /** Takes it off the thread's tick (`fillStall`). */
  #untick: (() => void) | undefined;

  constructor(now: () => number = monotonicMs) {
    this.now = now;
  }

  /** Publisher clock (ms) of the first sample: the output's time 0. Undefined until `begin`. */
  get startMs(): number | undefined {
    return this.#startMs;
  }

  /** Starts the timeline at `startMs` on the publisher's clock; from then on time never stops. */
  begin(startMs: number): void {
    if (this.#startMs !== undefined || this.#closed) return;
    this.#startMs = startMs;
    this.#lastLiveAt = this.now();
    this.started();
    this.#untick = onTick(() => this.fillStall());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#untick?.();
  }

  /** Once the timeline has begun, before anything else is written. */
  protected started(): void {}

  /** Writes silence from `written` up to sample `position`. */
  protected abstract silence(position: number): void;

  /**
   * Where a packet captured at `captureMs` goes (its first sample), telling that the publisher's
   * audio goes on; undefined when it cannot be placed (not begun, closed, too far ahead of now).
   */
  protected place(captureMs: number): number | undefined {
    if (this.#closed || this.#startMs === undefined || captureMs > this.now() + TIMELINE_LIMITS.discontinuityMs)
      return undefined;
    this.#lastLiveAt = this.now();
    return Math.round((captureMs - this.#startMs) * SAMPLES_PER_MS);
  }

  /**
   * Places a packet's samples (interleaved stereo; undefined for one that did not decode, which
   * still says the audio goes on). Within `stretchLimit` of where the timeline is, the packet is
   * stretched or squeezed to meet it, so a drifting sender costs no sound; after a larger gap,
   * silence first up to it; what of it is already written (it came late) is left out. `write`
   * writes `frames` frames of `samples` from frame `offset`.
   */
  protected placePcm(
    pcm: Int16Array | undefined,
    captureMs: number,
    write: (samples: Int16Array, frames: number, offset: number) => void,
  ): void {
    const position = this.place(captureMs);
    if (position === undefined || !pcm) return;
    const frames = pcm.length / PCM_CHANNELS;
    if (frames === 0) return;
    if (position + frames <= this.written) {
      this.dropped += frames;
      return;
    }
    const off = position - this.written;
    if (off !== 0 && Math.abs(off) <= stretchLimit(frames)) {
      this.stretched += off;
      return write(stretchPcm(pcm, frames, frames + off), frames + off, 0);
    }
    if (off > 0) this.silence(position);
    const skip = Math.max(0, -off);
    this.dropped += skip;
    write(pcm, frames - skip, skip);
  }

  /**
   * Keeps time moving with silence when no live audio arrives; called on the thread's tick (`tick.ts`)
   * once begun. A thread held past its tick (a process spawned, a machine out of CPU) runs its
   * overdue timers before it reads what its sockets and pipes hold: the packets of the hold would
   * then come after their time was filled with silence, and be dropped as late. So a stall seen on
   * the tick is judged again two turns on: after that turn's I/O, and after the round its sinks'
   * queues serve then (`SinkQueue`, whose rounds are themselves `setImmediate`s queued by that I/O).
   */
  fillStall(): void {
    if (!this.#stalled()) return;
    setImmediate(() =>
      setImmediate(() => {
        if (!this.#stalled()) return;
        const target = Math.floor((this.now() - STALL_LAG_MS - this.#startMs!) * SAMPLES_PER_MS);
        if (target > this.written) this.silence(target);
      }),
    );
  }

  #stalled(): boolean {
    return !this.#closed && this.#startMs !== undefined && this.now() - this.#lastLiveAt >= STALL_MS;
  }
}
