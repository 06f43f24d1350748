import { AudioTimeline, stretchLimit } from './timeline.js';
import { OggOpusWriter, OPUS_SILENCE_20MS, OPUS_SILENCE_SAMPLES, opusPacketSamples } from '../media/ogg.js';

export interface OpusTimelineOptions {
  /** Receives the Ogg stream in order: the headers, then a page per packet. */
  write: (pages: Buffer) => void;
  /** The publisher clock now (the clock `push` times are on). */
  now?: () => number;
}

/**
 * The audio of one output as the publisher's Opus packets themselves, for an encoder that decodes
 * them (ffmpeg): nothing is decoded here. On the same timeline as `PcmTimeline`'s (`AudioTimeline`):
 * each page's granule position says where its packet really ends, so a drifting sender's packets,
 * a fraction of a millisecond apart or overlapping, are all written, and the encoder stretches or
 * squeezes the sound to their times (`aresample=async`, `ffmpeg-args.ts`). A gap of 20 ms or more
 * (lost packets) and a stall of the publisher's audio are filled with silent frames, a packet
 * overlapping more than a squeeze closes (late) is dropped, and while muted every packet is
 * replaced by silence of the same length. It cannot mix a sound in: that needs the decoded audio
 * (`PcmTimeline`).
 */
export class OpusTimeline extends AudioTimeline {
  readonly #ogg = new OggOpusWriter();
  readonly #write: (pages: Buffer) => void;

  constructor(options: OpusTimelineOptions) {
    super(options.now);
    this.#write = options.write;
  }

  /** An Opus packet captured at `captureMs` on the publisher's clock. */
  push(packet: Buffer, captureMs: number): void {
    const position = this.place(captureMs);
    if (position === undefined) return;
    const samples = opusPacketSamples(packet);
    if (samples === 0) return;
    if (this.written - position > stretchLimit(samples)) {
      // Late: its time is written already, or most of it (it overlaps silence written for a stall).
      this.dropped += samples;
      return;
    }
    this.silence(position);
    this.stretched += position - this.written;
    if (this.muted) return this.#silentAs(position + samples, samples);
    this.written = position + samples;
    this.#write(this.#ogg.page(packet, this.written));
  }

  protected override started(): void {
    this.#write(this.#ogg.headers());
  }

  /** Silent frames up to `until` (samples); a remainder under a frame is left as a gap in time. */
  protected silence(until: number): void {
    while (until - this.written >= OPUS_SILENCE_SAMPLES) {
      this.written += OPUS_SILENCE_SAMPLES;
      this.#write(this.#ogg.page(OPUS_SILENCE_20MS, this.written));
    }
  }

  /** A muted packet of `samples` samples ending at `end`: as many silent frames, the last ending there. */
  #silentAs(end: number, samples: number): void {
    const count = Math.max(1, Math.round(samples / OPUS_SILENCE_SAMPLES));
    const from = this.written;
    for (let i = 1; i <= count; i++) {
      this.written = Math.round(from + ((end - from) * i) / count);
      this.#write(this.#ogg.page(OPUS_SILENCE_20MS, this.written));
    }
  }
}
