import { AudioTimeline } from './timeline.js';
import { OggOpusWriter, OPUS_SILENCE_20MS, OPUS_SILENCE_SAMPLES, opusPacketSamples } from '../media/ogg.js';

export interface OpusRelayOptions {
  /** Receives the Ogg stream in order: the headers, then a page per packet. */
  write: (pages: Buffer) => void;
  /** The publisher clock now (the clock `push` times are on). */
  now?: () => number;
}

/**
 * The audio of one output as the publisher's Opus packets themselves, for an encoder that decodes
 * them (ffmpeg): nothing is decoded here. On the same timeline as `AudioMixer`'s (`AudioTimeline`;
 * each page's granule position says where its packet ends): a gap of 20 ms or more (lost packets)
 * and a stall of the publisher's audio are filled with silent frames, late packets are dropped,
 * and while muted every packet is replaced by silence of the same length. It cannot mix a sound in:
 * that needs the decoded audio (`AudioMixer`).
 */
export class OpusRelay extends AudioTimeline {
  readonly #ogg = new OggOpusWriter();
  readonly #write: (pages: Buffer) => void;

  constructor(options: OpusRelayOptions) {
    super(options.now);
    this.#write = options.write;
  }

  /** An Opus packet captured at `captureMs` on the publisher's clock. */
  push(packet: Buffer, captureMs: number): void {
    const position = this.place(captureMs);
    if (position === undefined) return;
    const samples = opusPacketSamples(packet);
    // Unreadable, or its time is written already (late, or overlapping silence written for a stall).
    if (samples === 0 || position < this.written) return;
    this.silence(position);
    if (this.muted) return this.silence(position + samples, true);
    this.written = position + samples;
    this.#write(this.#ogg.page(packet, this.written));
  }

  protected override started(): void {
    this.#write(this.#ogg.headers());
  }

  /** Silent frames up to `until` (samples); a remainder under a frame is left as a gap in time, or, with `whole`, made a frame. */
  protected silence(until: number, whole = false): void {
    while (until - this.written >= OPUS_SILENCE_SAMPLES || (whole && until > this.written)) {
      this.written += OPUS_SILENCE_SAMPLES;
      this.#write(this.#ogg.page(OPUS_SILENCE_20MS, this.written));
    }
  }
}
