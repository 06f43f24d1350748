import { renameSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { monotonicMs } from '../core/clock.js';
import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import { IVF_CLOCK_RATE, ivfFrameHeader, ivfHeader } from '../media/ivf.js';
import type { InputSource } from './relay.js';
import { pictureBytes } from './canvas.js';
import type { Size } from './layout.js';
import { decoderArgs } from './mixer-args.js';
import { InputSound } from './sound.js';
import type { AudioPacket, MediaSink, VideoFrame } from '../media/sinks.js';

/** A decoder that ended by itself is replaced at most this often (ms). */
const DECODER_RETRY_MS = 1000;

export interface DecoderDeps {
  supervisor: FfmpegSupervisor;
  ffmpegPath: string;
  log: Logger;
}

/** How much of a decoder's output is read at once. */
const READ_BYTES = 256 * 1024;

/**
 * One decoder of an input's video: its frames from a keyframe on as IVF into ffmpeg, which scales
 * them into the slot (letterboxed) and gives back raw pictures of the slot's size. The latest
 * picture is what the mixer draws. Its output is read into buffers of its own, never allocated per
 * read (`spawnReading`); what it is written before its ffmpeg has started waits in the process.
 */
class SlotDecoder {
  /** Its latest whole picture; read (copied into the canvas) before the next one replaces it. */
  latest: Buffer | undefined;
  readonly #ffmpeg: FfmpegProcess | undefined;
  /** The picture being read from ffmpeg; it and `latest` swap when it is whole, so no picture is allocated twice. */
  #filling: Buffer;
  #filled = 0;
  #startMs: number | undefined;
  #closed = false;

  constructor(
    readonly size: Size,
    labelFile: string,
    deps: DecoderDeps,
    onPicture: () => void,
    /** It ended though it was not closed (a stream it could not decode, or it could not start). */
    onFailed: () => void,
  ) {
    this.#filling = Buffer.allocUnsafe(pictureBytes(size.width, size.height));
    const onData = (data: Buffer): void => {
      let at = 0;
      while (at < data.length) {
        const copied = data.copy(this.#filling, this.#filled, at);
        at += copied;
        this.#filled += copied;
        if (this.#filled < this.#filling.length) continue;
        const whole = this.#filling;
        this.#filling = this.latest ?? Buffer.allocUnsafe(whole.length);
        this.latest = whole;
        this.#filled = 0;
        onPicture();
      }
    };
    const onListenerError = (event: string, error: unknown): void =>
      deps.log.error({ err: error, event }, 'mixer decoder listener failed');
    try {
      this.#ffmpeg = deps.supervisor.spawnReading(
        deps.ffmpegPath,
        decoderArgs(size, labelFile),
        onListenerError,
        Buffer.allocUnsafe(READ_BYTES),
        onData,
      );
    } catch (error) {
      deps.log.error({ reason: (error as Error).message }, 'a mixer input decoder could not start');
      queueMicrotask(() => !this.#closed && onFailed());
      return;
    }
    this.#ffmpeg.on('line', (line) => deps.log.warn({ ffmpeg: line }, 'mixer input decoder'));
    this.#ffmpeg.on('exit', () => {
      if (!this.#closed) onFailed();
    });
  }

  /** A frame for the decoder; the first must be a keyframe (earlier ones are left out). */
  write(frame: VideoFrame): void {
    if (this.#closed) return;
    if (this.#startMs === undefined) {
      if (!frame.key) return;
      this.#startMs = frame.captureMs;
      this.#ffmpeg?.write(ivfHeader(frame.codec));
    }
    const data = frame.bitstream();
    const pts = Math.max(0, Math.round(((frame.captureMs - this.#startMs) * IVF_CLOCK_RATE) / 1000));
    this.#ffmpeg?.write(ivfFrameHeader(data.length, pts));
    this.#ffmpeg?.write(data);
  }

  /** Ends its ffmpeg; resolves once it has exited. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#ffmpeg?.stop(1000);
  }
}

/**
 * A published stream in a mixer: a sink of its publisher. Its video is decoded at its slot's size
 * (a new decoder when the slot's size changes, the old picture drawn until the new one comes),
 * its sound placed on the mixer's timeline. Its publisher may go and come back: the input stays,
 * shown as a placeholder meanwhile.
 */
export class MixerInput implements MediaSink {
  readonly sound = new InputSound();
  /** Where its media comes from while its stream publishes: the publisher, or a relay of it from another worker thread. */
  publisher: InputSource | undefined;
  #decoder: SlotDecoder | undefined;
  /** The decoder being replaced, drawn until the new one has a picture. */
  #previous: SlotDecoder | undefined;
  #slotSize: Size | undefined;

  #label = '';
  #lastFailure = -Infinity;
  /** Told once its decoder has its first picture (`onceShown`). */
  #whenShown: (() => void)[] = [];

  constructor(
    readonly stream: string,
    private readonly deps: DecoderDeps,
    /** The mixer's timeline starts here (publisher clock, ms). */
    startMs: number,
    /** Where its label is written for its decoders to read (`decoderArgs`). */
    private readonly labelFile: string,
    label = '',
  ) {
    this.sound.begin(startMs);
    this.label = label;
  }

  get label(): string {
    return this.#label;
  }

  /** The text written over its picture (empty: none); its decoder reads it again at its next frame. */
  set label(text: string) {
    this.#label = text;
    writeFileSync(`${this.labelFile}.new`, text, { mode: 0o600 });
    renameSync(`${this.labelFile}.new`, this.labelFile);
  }

  /** The picture to draw, and its size; undefined while it has none (its placeholder is drawn). */
  get picture(): { data: Buffer; size: Size } | undefined {
    const decoder = this.#decoder?.latest ? this.#decoder : this.#previous;
    return decoder?.latest ? { data: decoder.latest, size: decoder.size } : undefined;
  }

  /**
   * Calls `then` once it has a picture to show from its decoder: at once when it has one, or has
   * no decoder (no publisher yet, or no slot); or when it is closed first.
   */
  onceShown(then: () => void): void {
    if (!this.#decoder || this.#decoder.latest) then();
    else this.#whenShown.push(then);
  }

  /** Takes the media of `publisher` (the stream published, or published again). */
  attach(publisher: InputSource): void {
    void this.detach();
    this.publisher = publisher;
    if (this.#slotSize) this.#newDecoder(this.#slotSize);
    publisher.attach(this, true);
  }

  /** Its publisher went: the picture goes (a placeholder is drawn), the sound goes silent. Resolves once its decoders have exited. */
  async detach(): Promise<void> {
    this.publisher?.detach(this);
    this.publisher?.release?.();
    this.publisher = undefined;
    const decoders = [this.#decoder, this.#previous];
    this.#decoder = undefined;
    this.#previous = undefined;
    await Promise.all(decoders.flatMap((decoder) => (decoder ? [decoder.close()] : [])));
  }

  /** The slot it is drawn in now has this size: a decoder for it, fed from the publisher's cached keyframe. */
  resize(size: Size): void {
    if (this.#slotSize?.width === size.width && this.#slotSize.height === size.height) return;
    this.#slotSize = size;
    const publisher = this.publisher;
    if (!publisher) return;
    publisher.detach(this);
    this.#newDecoder(size);
    publisher.attach(this, true);
  }

  frame(frame: VideoFrame): void {
    this.#decoder?.write(frame);
  }

  audio(packet: AudioPacket): void {
    this.sound.pushPcm(this.publisher?.audioPcm(packet), packet.captureMs);
  }

  async close(): Promise<void> {
    this.sound.close();
    this.#shown();
    await this.detach();
  }

  /** Tells those waiting for its picture (`onceShown`). */
  #shown(): void {
    const waiting = this.#whenShown;
    this.#whenShown = [];
    for (const then of waiting) then();
  }

  #newDecoder(size: Size): void {
    void this.#previous?.close();
    this.#previous = this.#decoder;
    const decoder: SlotDecoder = new SlotDecoder(
      size,
      this.labelFile,
      this.deps,
      () => {
        if (this.#decoder !== decoder) return;
        this.#shown();
        if (!this.#previous) return;
        void this.#previous.close();
        this.#previous = undefined;
      },
      () => this.#decoderFailed(decoder),
    );
    this.#decoder = decoder;
  }

  /**
   * A decoder that ended by itself is replaced, from the next cached keyframe; at most once a second,
   * so a stream it cannot decode does not spin.
   */
  #decoderFailed(decoder: SlotDecoder): void {
    const publisher = this.publisher;
    if (this.#decoder !== decoder || !publisher || !this.#slotSize) return;
    const now = monotonicMs();
    if (now - this.#lastFailure < DECODER_RETRY_MS) return;
    this.#lastFailure = now;
    this.deps.log.warn(
      { stream: this.stream },
      "a mixer input's decoder ended: a new one starts from the next keyframe",
    );
    publisher.detach(this);
    this.#newDecoder(this.#slotSize);
    publisher.attach(this, true);
  }
}
