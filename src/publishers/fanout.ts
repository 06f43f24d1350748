import type { Logger } from 'pino';
import type { FrameTimes } from './keyframes.js';
import type { AudioPacket, FrameSink, MediaSink, PacketSink, VideoFrame } from '../media/sinks.js';

/** Frames the frame rate is measured over. */
const FRAME_RATE_WINDOW = 60;
/** Frames cached since the last keyframe at most (~10 s at 30 fps); a longer GOP is not cached. */
const MAX_GOP_FRAMES = 300;
/** Audio kept while no keyframe is cached, for the next one's sinks (video arrives after the audio captured with it). */
const AUDIO_HISTORY_MS = 4000;

/**
 * The stage of a publisher that gives its media to every sink: the video frames its depacketizer
 * made and the audio packets its receiver took, each made once and shared. It keeps the start
 * cache a new sink begins from, and what the keyframe schedule and the frame rate are read from.
 * One sink's exception does not keep the media from the others.
 */
export class Fanout implements FrameSink, FrameTimes {
  readonly counters = { frames: 0, keyframes: 0, sinkErrors: 0 };
  latestCaptureMs = 0;
  latestKeyframeMs: number | undefined;
  /** Where the audio track's receiver hands its packets. */
  readonly audioInput: PacketSink = { push: (packet) => this.audio(packet) };
  readonly #cache = new StartCache();
  readonly #sinks = new Set<MediaSink>();
  readonly #failedSinks = new WeakSet<MediaSink>();
  /** Capture times of the latest video frames, oldest first, for the frame rate. */
  readonly #frameTimes: number[] = [];
  /** Told when a keyframe to start from is cached. */
  readonly #keyframeWaiters = new Set<() => void>();

  constructor(
    private readonly hasVideo: boolean,
    private readonly log: Logger,
  ) {}

  /** The cached keyframe a sink can start from, while the frames since it are kept. */
  get keyframe(): VideoFrame | undefined {
    return this.#cache.keyframe;
  }

  get cachedKeyframeMs(): number | undefined {
    return this.#cache.keyframe?.captureMs;
  }

  /** Video frames per second over the latest frames, once there are a few. */
  get frameRate(): number | undefined {
    const times = this.#frameTimes;
    if (times.length < 5) return undefined;
    return ((times.length - 1) * 1000) / (times.at(-1)! - times[0]!);
  }

  /** See `Publisher.attach`. */
  attach(sink: MediaSink, fromKeyframe: boolean): boolean {
    const started = fromKeyframe && this.#cache.keyframe !== undefined;
    if (started) this.#cache.replay(sink);
    this.#sinks.add(sink);
    return started;
  }

  detach(sink: MediaSink): void {
    this.#sinks.delete(sink);
  }

  /** Resolves once a keyframe to start from is cached: at once when one is, else when one comes within `timeoutMs`. */
  async keyframeCached(timeoutMs: number): Promise<void> {
    if (this.#cache.keyframe) return;
    await new Promise<void>((resolve, reject) => {
      const cached = (): void => {
        clearTimeout(timeout);
        resolve();
      };
      const timeout = setTimeout(() => {
        this.#keyframeWaiters.delete(cached);
        reject(new Error('no keyframe arrived from the publisher'));
      }, timeoutMs);
      this.#keyframeWaiters.add(cached);
    });
  }

  /** A packet was lost: frames after it do not decode, so nothing is started from what came before. */
  lost(): void {
    this.#cache.clear(false);
  }

  close(): void {
    this.#sinks.clear();
    this.#cache.clear(true);
  }

  frame(frame: VideoFrame): void {
    const { captureMs } = frame;
    const times = this.#frameTimes;
    times.push(captureMs);
    if (times.length > FRAME_RATE_WINDOW) times.shift();
    this.latestCaptureMs = Math.max(this.latestCaptureMs, captureMs);
    this.#cache.addFrame(frame);
    this.counters.frames++;
    if (frame.key) {
      this.counters.keyframes++;
      this.latestKeyframeMs = captureMs;
      if (this.#keyframeWaiters.size) this.#tellKeyframeWaiters();
    }
    for (const sink of this.#sinks) {
      try {
        sink.frame(frame);
      } catch (error) {
        this.#sinkFailed(sink, error);
      }
    }
  }

  audio(packet: AudioPacket): void {
    if (this.hasVideo) this.#cache.addAudio(packet);
    for (const sink of this.#sinks) {
      try {
        sink.audio(packet);
      } catch (error) {
        this.#sinkFailed(sink, error);
      }
    }
  }

  #tellKeyframeWaiters(): void {
    const waiters = [...this.#keyframeWaiters];
    this.#keyframeWaiters.clear();
    for (const cached of waiters) cached();
  }

  /** Each broken sink is logged once. */
  #sinkFailed(sink: MediaSink, error: unknown): void {
    this.counters.sinkErrors++;
    if (this.#failedSinks.has(sink)) return;
    this.#failedSinks.add(sink);
    this.log.error({ err: error }, 'a media sink threw: the others still get the stream');
  }
}

/**
 * The one cache a new sink starts from, so it begins at a keyframe at once instead of waiting for
 * the next one: the frames since the last keyframe, and the audio captured since that keyframe
 * (some of which arrived before it: video is encoded and sent later than audio). Frames are kept
 * as the depacketizer made them, shared with every sink; nothing is copied.
 */
export class StartCache {
  #gop: VideoFrame[] = [];
  /** Audio packets, oldest first, back to the cached keyframe (or AUDIO_HISTORY_MS while none is). */
  #audio: AudioPacket[] = [];
  /** Index of the oldest packet of `#audio` still kept: dropped ones are cut off in bulk. */
  #audioStart = 0;

  /** The keyframe a sink can start from, if one is cached. */
  get keyframe(): VideoFrame | undefined {
    return this.#gop[0];
  }

  addFrame(frame: VideoFrame): void {
    if (frame.key) {
      this.#gop = [frame];
      this.#trimAudio(frame.captureMs);
    } else if (this.#gop.length > 0 && this.#gop.length < MAX_GOP_FRAMES) {
      this.#gop.push(frame);
    } else {
      this.#gop = [];
    }
  }

  addAudio(packet: AudioPacket): void {
    this.#audio.push(packet);
    const keyframe = this.#gop[0];
    const oldest = packet.captureMs - AUDIO_HISTORY_MS;
    this.#trimAudio(keyframe ? Math.min(keyframe.captureMs, oldest) : oldest);
  }

  /** Gives a new sink the cached keyframe and the frames since, then the audio captured since it. */
  replay(sink: MediaSink): void {
    const keyframe = this.#gop[0];
    if (!keyframe) return;
    for (const frame of this.#gop) sink.frame(frame);
    for (let i = this.#audioStart; i < this.#audio.length; i++) {
      const packet = this.#audio[i]!;
      if (packet.captureMs >= keyframe.captureMs) sink.audio(packet);
    }
  }

  /** Forgets the frames; with `audio`, the audio too. */
  clear(audio: boolean): void {
    this.#gop = [];
    if (!audio) return;
    this.#audio = [];
    this.#audioStart = 0;
  }

  /** Forgets audio captured before `ms`; the array is compacted once half of it is dropped. */
  #trimAudio(ms: number): void {
    const audio = this.#audio;
    let start = this.#audioStart;
    while (start < audio.length && audio[start]!.captureMs < ms) start++;
    if (start > 64 && start * 2 > audio.length) {
      this.#audio = audio.slice(start);
      start = 0;
    }
    this.#audioStart = start;
  }
}
