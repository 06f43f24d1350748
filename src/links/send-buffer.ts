import type { Amf0Value } from '../media/amf0.js';
import type { SendBufferState } from './link.js';
import type { TagSink } from '../media/sinks.js';

/** Web Call Server's `rtmp_out_buffer_*` settings. */
export interface SendBufferSettings {
  enabled: boolean;
  /** Media held before sending starts, and again after the buffer ran dry (ms). */
  startMs: number;
  /** The most media ever held (ms): the most delay the buffer adds. */
  maxMs: number;
  /** How often due media is sent (ms). */
  pollingMs: number;
  /** Times the buffer may fill again after running dry; then it passes media straight on. -1: no limit. */
  maxBufferings: number;
}

type Entry =
  | { kind: 'video' | 'audio'; timestamp: number; body: Buffer; at: number }
  | { kind: 'metadata'; timestamp: number; metadata: Record<string, Amf0Value>; at: number };

/**
 * An adaptive send buffer (Web Call Server's RTMP output buffering): media is held until
 * `startMs` of it is buffered, then sent paced by its timestamps, so a publisher's bursts and gaps
 * (network jitter, ffmpeg writing audio in runs) reach the destination as an even stream.
 *
 * - Sending starts `startMs` behind the newest media; media already older than that goes at once.
 *   Media is sent every `pollingMs`.
 * - After each poll it holds no more than `maxMs` of media and nothing it has held for `maxMs`:
 *   beyond either, it sends what is over and goes on behind again. So it adds at most `maxMs`
 *   (plus one polling period) of delay, whatever the input does.
 * - Running dry (the input stopped for longer than what was buffered) is a *buffering*: it fills
 *   to `startMs` again before sending. After `maxBufferings` of them (unless -1) it stops
 *   buffering and passes media straight on, as Web Call Server does.
 *
 * Each track keeps its order; between tracks, media leaves in timestamp order. So late video
 * (a burst after the publisher's network stalled) is not held behind audio that ffmpeg went on
 * making meanwhile. onMetaData goes with the video, at once when its turn comes.
 */
export class SendBuffer implements TagSink {
  state: SendBufferState = 'buffering';
  /** Times the buffer ran dry and filled again. */
  bufferings = 0;
  readonly #tracks: { video: Entry[]; audio: Entry[] } = { video: [], audio: [] };
  /** Timestamp of the newest media queued so far. */
  #newestTs: number | undefined;
  /** Media with timestamp `ts` is due at `anchor.at + ts - anchor.ts`. */
  #anchor = { ts: 0, at: 0 };
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly output: TagSink,
    private readonly settings: SendBufferSettings,
    private readonly now: () => number = () => performance.now(),
    private readonly onChange: (state: SendBufferState) => void = () => {},
  ) {
    this.#timer = setInterval(() => this.poll(), settings.pollingMs);
    this.#timer.unref();
  }

  /** Milliseconds of media held: from the oldest queued to the newest. */
  get levelMs(): number {
    const oldest = this.#oldest();
    return oldest && this.#newestTs !== undefined ? Math.max(0, this.#newestTs - oldest.timestamp) : 0;
  }

  writeMetadata(metadata: Record<string, Amf0Value>): void {
    if (this.state === 'passthrough') return this.output.writeMetadata(metadata);
    this.#push('video', { kind: 'metadata', timestamp: -Infinity, metadata, at: this.now() });
  }

  writeVideo(timestamp: number, body: Buffer): void {
    if (this.state === 'passthrough') return this.output.writeVideo(timestamp, body);
    this.#push('video', { kind: 'video', timestamp, body, at: this.now() });
  }

  writeAudio(timestamp: number, body: Buffer): void {
    if (this.state === 'passthrough') return this.output.writeAudio(timestamp, body);
    this.#push('audio', { kind: 'audio', timestamp, body, at: this.now() });
  }

  /** Drops what is held (the link it was for is gone) and stops the timer. */
  close(): void {
    clearInterval(this.#timer);
    this.#tracks.video.length = this.#tracks.audio.length = 0;
    this.state = 'passthrough';
  }

  #push(track: 'video' | 'audio', entry: Entry): void {
    this.#tracks[track].push(entry);
    if (entry.kind !== 'metadata') this.#newestTs = Math.max(this.#newestTs ?? entry.timestamp, entry.timestamp);
  }

  /**
   * Sends what is due; called every polling period. Not on every write: media written in one go
   * (the start cache's replay) is all in the queue before sending begins behind the newest of it.
   */
  poll(): void {
    if (this.state === 'passthrough') return;
    const now = this.now();
    const { startMs, maxMs } = this.settings;
    const oldest = this.#oldest();
    const longestHeld = Math.min(this.#tracks.video[0]?.at ?? now, this.#tracks.audio[0]?.at ?? now);
    if (oldest && now - longestHeld >= maxMs) {
      // Held too long (the input trickles): the oldest goes now, the rest paced after it.
      this.#play({ ts: oldest.timestamp, at: now });
    } else if (this.levelMs > maxMs || (this.state === 'buffering' && this.levelMs >= startMs)) {
      // Enough to start, or more than allowed (a burst, input faster than real time): go on
      // `startMs` behind the newest; anything older than that is due at once.
      this.#play({ ts: this.#newestTs! - startMs, at: now });
    }
    if (this.state !== 'playing') return;
    for (let next = this.#next(); next && this.#due(next) <= now; next = this.#next()) this.#send(next);
    if (!this.#tracks.video.length && !this.#tracks.audio.length) this.#ranDry();
  }

  /** The head of either track with the earlier timestamp (video on a tie: its header comes first). */
  #next(): Entry | undefined {
    const video = this.#tracks.video[0];
    const audio = this.#tracks.audio[0];
    return !audio || (video && video.timestamp <= audio.timestamp) ? video : audio;
  }

  /** The oldest media held (onMetaData aside). */
  #oldest(): Entry | undefined {
    const video = this.#tracks.video.find((e) => e.kind !== 'metadata');
    const audio = this.#tracks.audio[0];
    return !audio || (video && video.timestamp <= audio.timestamp) ? video : audio;
  }

  #play(anchor: { ts: number; at: number }): void {
    this.#anchor = anchor;
    this.#setState('playing');
  }

  #due(entry: Entry): number {
    return this.#anchor.at + entry.timestamp - this.#anchor.ts;
  }

  #ranDry(): void {
    const { maxBufferings } = this.settings;
    if (maxBufferings !== -1 && this.bufferings >= maxBufferings) return this.#setState('passthrough');
    this.bufferings++;
    this.#setState('buffering');
  }

  #setState(state: SendBufferState): void {
    if (this.state === state) return;
    this.state = state;
    this.onChange(state);
  }

  #send(entry: Entry): void {
    this.#tracks[entry.kind === 'audio' ? 'audio' : 'video'].shift();
    if (entry.kind === 'metadata') this.output.writeMetadata(entry.metadata);
    else if (entry.kind === 'video') this.output.writeVideo(entry.timestamp, entry.body);
    else this.output.writeAudio(entry.timestamp, entry.body);
  }
}
