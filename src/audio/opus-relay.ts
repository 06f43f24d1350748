import { OggOpusWriter, OPUS_SILENCE_20MS, OPUS_SILENCE_SAMPLES, opusPacketSamples } from '../media/ogg.js';

const SAMPLES_PER_MS = 48;
/** A live packet missing for this long means the publisher's audio stalled: silence is written. */
const STALL_MS = 100;
/** While stalled, silence is written up to this far behind now, leaving room for late packets. */
const STALL_LAG_MS = 60;
const TICK_MS = 20;
/** Packets further ahead of now than this cannot be placed (a sender whose clock jumped). */
const MAX_AHEAD_MS = 1000;

export interface OpusRelayOptions {
  /** Receives the Ogg stream in order: the headers, then a page per packet. */
  write: (pages: Buffer) => void;
  /** The publisher clock now (the clock `push` times are on). */
  now?: () => number;
}

/**
 * The audio of one output as the publisher's Opus packets themselves, for an encoder that decodes
 * them (ffmpeg): nothing is decoded here. The same timeline as `AudioMixer`'s: sample n is at
 * `startMs + n / 48` on the publisher's clock (each page's granule position says where its packet
 * ends); a gap of 20 ms or more (lost packets) and a stall of the publisher's audio are filled
 * with silent frames, late packets are dropped, and while muted every packet is replaced by silence
 * of the same length. It cannot mix a sound in: that needs the decoded audio (`AudioMixer`).
 */
export class OpusRelay {
  muted = false;
  /** Samples (48 kHz) written so far. */
  written = 0;

  readonly #ogg = new OggOpusWriter();
  readonly #write: (pages: Buffer) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #startMs: number | undefined;
  #lastLiveAt = 0;
  #closed = false;

  constructor(options: OpusRelayOptions) {
    this.#write = options.write;
    this.#now = options.now ?? Date.now;
  }

  /** Publisher clock (ms) of the first sample: the output's time 0. Undefined until `begin`. */
  get startMs(): number | undefined {
    return this.#startMs;
  }

  /** Starts the timeline at `startMs` on the publisher's clock; from then on time never stops. */
  begin(startMs: number): void {
    if (this.#startMs !== undefined || this.#closed) return;
    this.#startMs = startMs;
    this.#lastLiveAt = this.#now();
    this.#write(this.#ogg.headers());
    this.#timer = setInterval(() => this.#fillStall(), TICK_MS);
  }

  /** An Opus packet captured at `wallclockMs` on the publisher's clock. */
  push(packet: Buffer, wallclockMs: number): void {
    if (this.#closed || this.#startMs === undefined) return;
    if (wallclockMs > this.#now() + MAX_AHEAD_MS) return;
    this.#lastLiveAt = this.#now();
    const samples = opusPacketSamples(packet);
    const position = Math.round((wallclockMs - this.#startMs) * SAMPLES_PER_MS);
    // Unreadable, or its time is written already (late, or overlapping silence written for a stall).
    if (samples === 0 || position < this.written) return;
    this.#silence(position);
    if (this.muted) return this.#silence(position + samples, true);
    this.written = position + samples;
    this.#write(this.#ogg.page(packet, this.written));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
  }

  /** Silent frames up to `until` (samples); a remainder under a frame is left as a gap in time, or, with `whole`, made a frame. */
  #silence(until: number, whole = false): void {
    while (until - this.written >= OPUS_SILENCE_SAMPLES || (whole && until > this.written)) {
      this.written += OPUS_SILENCE_SAMPLES;
      this.#write(this.#ogg.page(OPUS_SILENCE_20MS, this.written));
    }
  }

  /** Keeps time moving with silence when no live audio arrives. */
  #fillStall(): void {
    const now = this.#now();
    if (now - this.#lastLiveAt < STALL_MS || this.#startMs === undefined) return;
    this.#silence(Math.floor((now - STALL_LAG_MS - this.#startMs) * SAMPLES_PER_MS));
  }
}
