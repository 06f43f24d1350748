import { invalid } from '../core/errors.js';
import { TypedEmitter, type ListenerErrorHandler } from '../core/events.js';
import type { SoundSource } from './pcm-timeline.js';
import { PCM_CHANNELS, PCM_SAMPLE_RATE } from './pcm.js';
import { ffmpegQuietly, type FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import { resolveMediaFile, WAV } from '../security/media-files.js';

const BYTES_PER_FRAME = 2 * PCM_CHANNELS;
/** Decoded audio held ahead of playback: ~5 s; the decoder is paused beyond it. */
const HIGH_WATER_BYTES = 5 * PCM_SAMPLE_RATE * BYTES_PER_FRAME;
const LOW_WATER_BYTES = HIGH_WATER_BYTES / 4;
const DECODE_START_TIMEOUT_MS = 5000;

/** The path of a sound file named in a request: a RIFF WAV file in the media directory (see `resolveMediaFile`). */
export function resolveSoundFile(mediaDir: string, name: string, field = 'soundFile'): Promise<string> {
  return resolveMediaFile(mediaDir, name, field, WAV);
}

export interface SoundOptions {
  /** Starts the decoding ffmpeg. */
  ffmpeg: FfmpegSupervisor;
  loop: boolean;
  volume: number;
  /** Hears of a listener of the player's events that threw. */
  onListenerError?: ListenerErrorHandler;
}

export type SoundPlayerEvents = {
  /** Played to the end (not looping), or its decoder failed. */
  ended: [error?: string];
};

/**
 * A WAV file played into a push's mix. ffmpeg decodes it (any PCM or float format, any sample
 * rate and channel count) to 48 kHz stereo s16le, looping with `-stream_loop -1` when asked; only a
 * few seconds are held ahead, so a file of any length costs the same memory.
 */
export class SoundPlayer extends TypedEmitter<SoundPlayerEvents> implements SoundSource {
  readonly volume: number;
  readonly #decoder: FfmpegProcess;
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  #paused = false;
  #decoded = false;
  #ended = false;

  private constructor(ffmpegPath: string, path: string, options: SoundOptions) {
    super(options.onListenerError);
    this.volume = options.volume;
    const args = [
      ...ffmpegQuietly('file'),
      ...(options.loop ? ['-stream_loop', '-1'] : []),
      '-f',
      'wav',
      '-i',
      `file:${path}`,
      '-f',
      's16le',
      '-ar',
      String(PCM_SAMPLE_RATE),
      '-ac',
      String(PCM_CHANNELS),
      'pipe:1',
    ];
    this.#decoder = options.ffmpeg.spawn(ffmpegPath, args, options.onListenerError);
    this.#decoder.on('output', (data) => this.#onData(data));
  }

  /** Starts decoding `path`; resolves once audio is ready to play, rejects when it cannot be decoded. */
  static async start(
    ffmpegPath: string,
    path: string,
    options: SoundOptions,
    field = 'soundFile',
  ): Promise<SoundPlayer> {
    const player = new SoundPlayer(ffmpegPath, path, options);
    const decoder = player.#decoder;
    const errors: string[] = [];
    decoder.on('line', (line) => {
      errors.push(line);
      if (errors.length > 5) errors.shift(); // only the latest say why it failed
    });
    const outcome = await new Promise<'ready' | 'failed' | 'timeout'>((resolve) => {
      const timer = setTimeout(() => done('timeout'), DECODE_START_TIMEOUT_MS);
      function done(result: 'ready' | 'failed' | 'timeout'): void {
        clearTimeout(timer);
        resolve(result);
      }
      decoder.once('output', () => done('ready'));
      void decoder.exited.then(() => done(decoder.exitCode === 0 && player.#buffered > 0 ? 'ready' : 'failed'));
    });
    if (outcome !== 'ready') {
      await decoder.kill();
      const reason = outcome === 'timeout' ? 'decoding did not start in time' : (errors.at(-1) ?? 'it holds no audio');
      throw invalid(field, `could not be decoded: ${reason.replace(/^.*?: /, '')}`);
    }
    void decoder.exited.then(() => {
      player.#decoded = true;
      if (decoder.exitCode !== 0) player.#end(`decoding failed: ${errors.at(-1) ?? `code ${decoder.exitCode}`}`);
    });
    return player;
  }

  take(frames: number): Int16Array {
    const wanted = Math.min(frames * BYTES_PER_FRAME, this.#buffered - (this.#buffered % BYTES_PER_FRAME));
    const out = new Int16Array(wanted / 2);
    const bytes = Buffer.from(out.buffer);
    let filled = 0;
    while (filled < wanted) {
      const chunk = this.#chunks[0]!;
      const n = Math.min(chunk.length, wanted - filled);
      chunk.copy(bytes, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(n);
    }
    this.#buffered -= wanted;
    if (this.#paused && this.#buffered < LOW_WATER_BYTES) {
      this.#paused = false;
      this.#decoder.resumeOutput();
    }
    if (this.#decoded && this.#buffered < BYTES_PER_FRAME) this.#end();
    return out;
  }

  /** Stops decoding; resolves when the decoder is gone. */
  async stop(): Promise<void> {
    this.#ended = true;
    this.removeAllListeners();
    await this.#decoder.kill();
  }

  #onData(data: Buffer): void {
    this.#chunks.push(data);
    this.#buffered += data.length;
    if (!this.#paused && this.#buffered > HIGH_WATER_BYTES) {
      this.#paused = true;
      this.#decoder.pauseOutput();
    }
  }

  #end(error?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.safeEmit('ended', error);
  }
}
