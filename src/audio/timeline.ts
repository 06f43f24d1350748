import { monotonicMs } from '../clock.js';
import { onTick } from '../tick.js';
import { PCM_CHANNELS } from './pcm.js';

/** Samples (48 kHz frames) per millisecond of the publisher's clock. */
const SAMPLES_PER_MS = 48;
/** A live packet missing for this long means the publisher's audio stalled: silence is written. */
const STALL_MS = 100;
/** While stalled, silence is written up to this far behind now, leaving room for late packets. */
const STALL_LAG_MS = 60;
/** Packets further ahead of now than this cannot be placed (a sender whose clock jumped). */
const MAX_AHEAD_MS = 1000;

/**
 * One output's audio on one unbroken timeline: sample n is at `startMs + n / 48` on the
 * publisher's clock, so the encoder's output maps back exactly. A packet is placed by its capture
 * time; when the publisher's audio stops (or it never had any), silence keeps the timeline moving
 * in real time, a little behind now. What is written, and how, is the subclass's: PCM mixed
 * (`AudioMixer`) or the publisher's Opus as it is (`OpusRelay`).
 */
export abstract class AudioTimeline {
  muted = false;
  /** Samples written so far. */
  written = 0;

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
    if (this.#closed || this.#startMs === undefined || captureMs > this.now() + MAX_AHEAD_MS) return undefined;
    this.#lastLiveAt = this.now();
    return Math.round((captureMs - this.#startMs) * SAMPLES_PER_MS);
  }

  /**
   * Places a packet's samples (interleaved stereo; undefined for one that did not decode, which
   * still says the audio goes on): silence first up to it after a gap, and what of it is already
   * written (it came late) left out; `write` writes its `frames` frames from frame `offset`.
   */
  protected placePcm(
    pcm: Int16Array | undefined,
    captureMs: number,
    write: (frames: number, offset: number) => void,
  ): void {
    const position = this.place(captureMs);
    if (position === undefined) return;
    const frames = pcm ? pcm.length / PCM_CHANNELS : 0;
    if (frames === 0 || position + frames <= this.written) return;
    if (position > this.written) this.silence(position);
    const skip = this.written - position;
    write(frames - skip, skip);
  }

  /** Keeps time moving with silence when no live audio arrives; called on the thread's tick (`tick.ts`) once begun. */
  fillStall(): void {
    const now = this.now();
    if (now - this.#lastLiveAt < STALL_MS || this.#startMs === undefined) return;
    const target = Math.floor((now - STALL_LAG_MS - this.#startMs) * SAMPLES_PER_MS);
    if (target > this.written) this.silence(target);
  }
}
