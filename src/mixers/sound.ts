import { clamp, PCM_CHANNELS } from '../audio/pcm.js';
import { AudioTimeline } from '../audio/timeline.js';

/** Samples (frames of two) an input keeps: one second, far more than the mix lags behind. */
const RING_FRAMES = 48000;
/** The mix never goes above this (−1 dBFS): louder sums are turned down, not clipped. */
const LIMIT = Math.round(32767 * 10 ** (-1 / 20));
/** How fast the limiter lets the level back up once the peaks are gone: per frame, towards 1. */
const RELEASE = 1 - Math.exp(-1 / (0.05 * 48000));

/**
 * One input's sound on the mixer's timeline: its publisher's Opus decoded (once for all, by the
 * publisher's `OpusStage`), placed by capture time, silence where it has none (a stall, no audio
 * at all), kept for a second in a ring the mix reads from.
 */
export class InputSound extends AudioTimeline {
  /** Its gain in the mix, 0 to 4 (1: as it is). */
  volume = 1;
  readonly #ring = new Int16Array(RING_FRAMES * PCM_CHANNELS);

  /** A packet's samples (interleaved stereo) captured at `captureMs`; undefined: not decoded. */
  pushPcm(pcm: Int16Array | undefined, captureMs: number): void {
    this.placePcm(pcm, captureMs, (samples, frames, offset) => this.#write(frames, samples, offset));
  }

  /** Its level over the last block mixed (dBFS; -Infinity for silence), for the speaker layout. */
  levelDb = -Infinity;

  /**
   * Adds its `frames` frames from absolute `position` into `sum`, times `gain`; frames it does not
   * hold (not yet written, or gone from the ring) add nothing. Measures its level over them.
   */
  addBlock(sum: Float64Array, position: number, frames: number, gain: number): void {
    let energy = 0;
    const from = Math.max(position, this.written - RING_FRAMES);
    const to = Math.min(position + frames, this.written);
    for (let p = from; p < to && !this.muted; p++) {
      const at = (p % RING_FRAMES) * PCM_CHANNELS;
      const left = this.#ring[at]!;
      const right = this.#ring[at + 1]!;
      const i = (p - position) * PCM_CHANNELS;
      sum[i] = sum[i]! + left * gain;
      sum[i + 1] = sum[i + 1]! + right * gain;
      energy += left * left + right * right;
    }
    const meanSquare = energy / (frames * PCM_CHANNELS);
    this.levelDb = meanSquare > 0 ? 10 * Math.log10(meanSquare / (32768 * 32768)) : -Infinity;
  }

  protected silence(position: number): void {
    const frames = position - this.written;
    if (frames < RING_FRAMES) return this.#write(frames);
    // A gap longer than the ring (an input added to a mixer that has run for hours): the whole ring
    // is silent, at once, however long the gap.
    this.#ring.fill(0);
    this.written = position;
  }

  /** Writes `frames` frames: `pcm`'s from frame `offset`, or silence. */
  #write(frames: number, pcm?: Int16Array, offset = 0): void {
    for (let i = 0; i < frames; i++) {
      const at = ((this.written + i) % RING_FRAMES) * PCM_CHANNELS;
      this.#ring[at] = pcm ? pcm[(offset + i) * PCM_CHANNELS]! : 0;
      this.#ring[at + 1] = pcm ? pcm[(offset + i) * PCM_CHANNELS + 1]! : 0;
    }
    this.written += frames;
  }
}

/**
 * The mixer's sound: every input's samples at each moment summed at its volume (summed, not
 * averaged: two people speaking stay as loud as one), then limited so the sum never clips: a peak
 * over −1 dBFS turns the level down at once, and it comes back up over ~50 ms.
 */
export class SoundMix {
  /** Frames mixed so far: the next block starts here, on every input's timeline. */
  position = 0;
  #gain = 1;

  /** The next `frames` frames of the inputs' sum, as 16-bit stereo. */
  mix(inputs: readonly InputSound[], frames: number): Int16Array {
    const sum = new Float64Array(frames * PCM_CHANNELS);
    for (const input of inputs) input.addBlock(sum, this.position, frames, input.volume);
    this.position += frames;
    const out = new Int16Array(frames * PCM_CHANNELS);
    let gain = this.#gain;
    for (let i = 0; i < frames; i++) {
      const peak = Math.max(Math.abs(sum[2 * i]!), Math.abs(sum[2 * i + 1]!));
      if (peak * gain > LIMIT) gain = LIMIT / peak;
      out[2 * i] = clamp(Math.round(sum[2 * i]! * gain));
      out[2 * i + 1] = clamp(Math.round(sum[2 * i + 1]! * gain));
      gain += (1 - gain) * RELEASE;
    }
    this.#gain = gain;
    return out;
  }
}
