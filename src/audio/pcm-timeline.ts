import { clamp, PCM_CHANNELS } from './pcm.js';
import { AudioTimeline } from './timeline.js';

/** Audio mixed over the live audio: a sound file being played. */
export interface SoundSource {
  /** Up to `frames` interleaved stereo frames; fewer when it has no more yet, or has ended. */
  take(frames: number): Int16Array;
  /** Gain applied to the source, 0..1. */
  readonly volume: number;
}

export interface PcmTimelineOptions {
  /** Receives each block of PCM in order, with no gap in time. */
  write: (pcm: Buffer) => void;
  /** The publisher clock now (the clock `push` times are on). */
  now?: () => number;
}

/**
 * The audio of one push, as PCM on one unbroken timeline (`AudioTimeline`): the publisher's
 * Opus decoded, silenced while muted, with a sound file mixed over it. Lost packets become
 * silence, late ones are dropped.
 */
export class PcmTimeline extends AudioTimeline {
  source: SoundSource | undefined;

  readonly #options: PcmTimelineOptions;

  /** Its audio comes decoded (`pushPcm`): a publisher's Opus is decoded once for all its pushes (`OpusStage`). */
  constructor(options: PcmTimelineOptions) {
    super(options.now);
    this.#options = options;
  }

  /**
   * A packet's samples (interleaved stereo) at `captureMs` on the publisher's clock; undefined for
   * a packet that could not be decoded, which still says the publisher's audio goes on.
   */
  pushPcm(pcm: Int16Array | undefined, captureMs: number): void {
    this.placePcm(pcm, captureMs, (samples, frames, offset) => this.#mix(frames, samples, offset));
  }

  protected silence(position: number): void {
    this.#mix(position - this.written);
  }

  /** Writes `frames` frames: live samples from frame `offset` (silence without them or when muted) plus the source. */
  #mix(frames: number, live?: Int16Array, offset = 0): void {
    const out =
      live && !this.muted
        ? live.slice(offset * PCM_CHANNELS, (offset + frames) * PCM_CHANNELS)
        : new Int16Array(frames * PCM_CHANNELS);
    const source = this.source;
    if (source) {
      const added = source.take(frames);
      const gain = source.volume;
      for (let i = 0; i < added.length; i++) out[i] = clamp(Math.round(out[i]! + added[i]! * gain));
    }
    this.written += frames;
    this.#options.write(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }
}
