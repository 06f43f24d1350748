import { clamp, PCM_CHANNELS, PCM_SAMPLE_RATE } from './pcm.js';

const FRAMES_PER_MS = PCM_SAMPLE_RATE / 1000;

/** Audio mixed over the live audio: a sound file being played. */
export interface MixSource {
  /** Up to `frames` interleaved stereo frames; fewer when it has no more yet, or has ended. */
  take(frames: number): Int16Array;
  /** Gain applied to the source, 0..1. */
  readonly volume: number;
}

export interface AudioMixerOptions {
  /** Receives each block of PCM in order, with no gap in time. */
  write: (pcm: Buffer) => void;
  /** The publisher clock now (the clock `push` times are on). */
  now?: () => number;
}

/** A live packet missing for this long means the publisher's audio stalled: silence is written. */
const STALL_MS = 100;
/** While stalled, silence is written up to this far behind now, leaving room for late packets. */
const STALL_LAG_MS = 60;
const TICK_MS = 20;
/** Packets further ahead of now than this cannot be placed (a sender whose clock jumped). */
const MAX_AHEAD_MS = 1000;

/**
 * The audio of one transponder, as PCM on one unbroken timeline: the publisher's Opus decoded,
 * silenced while muted, with a sound file mixed over it. Sample n is at `startMs + n / 48` on the
 * publisher's clock, so the encoder's output maps back exactly. Lost packets become silence, late
 * ones are dropped, and when the publisher's audio stops (or it never had any) silence keeps the
 * timeline moving in real time.
 */
export class AudioMixer {
  muted = false;
  source: MixSource | undefined;
  /** Frames written so far. */
  written = 0;

  readonly #options: AudioMixerOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #startMs: number | undefined;
  #lastLiveAt = 0;
  #closed = false;

  /** Its audio comes decoded (`pushPcm`): a publisher's Opus is decoded once for all its outputs (`OpusStage`). */
  constructor(options: AudioMixerOptions) {
    this.#options = options;
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
    this.#timer = setInterval(() => this.#fillStall(), TICK_MS);
  }

  /**
   * A packet's samples (interleaved stereo) at `wallclockMs` on the publisher's clock; undefined for
   * a packet that could not be decoded, which still says the publisher's audio goes on.
   */
  pushPcm(pcm: Int16Array | undefined, wallclockMs: number): void {
    if (this.#closed || this.#startMs === undefined) return;
    const position = Math.round((wallclockMs - this.#startMs) * FRAMES_PER_MS);
    if (wallclockMs > this.#now() + MAX_AHEAD_MS) return;
    this.#lastLiveAt = this.#now();
    const frames = pcm ? pcm.length / PCM_CHANNELS : 0;
    if (frames === 0 || position + frames <= this.written) return; // undecodable, or its time is written already
    if (position > this.written) this.#mix(position - this.written);
    const skip = this.written - position; // > 0 when it overlaps silence written for a stall
    this.#mix(frames - Math.max(0, skip), pcm, Math.max(0, skip));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
  }

  /** Keeps time moving with silence when no live audio arrives. */
  #fillStall(): void {
    const now = this.#now();
    if (now - this.#lastLiveAt < STALL_MS || this.#startMs === undefined) return;
    const target = Math.floor((now - STALL_LAG_MS - this.#startMs) * FRAMES_PER_MS);
    if (target > this.written) this.#mix(target - this.written);
  }

  /** Writes `frames` frames: live samples from frame `offset` (silence without them or when muted) plus the source. */
  #mix(frames: number, live?: Int16Array, offset = 0): void {
    const out = live && !this.muted ? live.slice(offset * PCM_CHANNELS, (offset + frames) * PCM_CHANNELS) : new Int16Array(frames * PCM_CHANNELS);
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
