import type { VideoFrame } from './frames.js';

/** An audio packet as sinks receive it: its payload and its capture time on the publisher's clock. */
export interface AudioPacket {
  payload: Buffer;
  /** Capture time on the publisher's clock (ms). */
  wallclockMs: number;
}

/** What a sink is given: the publisher's audio packets and its whole video frames. */
export interface MediaSink {
  audio(packet: AudioPacket): void;
  frame(frame: VideoFrame): void;
}

/** Frames cached since the last keyframe at most (~10 s at 30 fps); a longer GOP is not cached. */
const MAX_GOP_FRAMES = 300;
/** Audio kept while no keyframe is cached, for the next one's sinks (video arrives after the audio captured with it). */
const AUDIO_HISTORY_MS = 4000;

/**
 * The one cache a new sink starts from, so it begins at a keyframe at once instead of waiting for
 * the next one: the frames since the last keyframe, and the audio captured since that keyframe
 * (some of which arrived before it: video is encoded and sent later than audio). Frames are kept
 * as the frame stage made them, shared with every sink; nothing is copied.
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

  /** Whether a sink can start from a cached keyframe. */
  get ready(): boolean {
    return this.#gop.length > 0;
  }

  addFrame(frame: VideoFrame): void {
    if (frame.key) {
      this.#gop = [frame];
      this.#trimAudio(frame.wallclockMs);
    } else if (this.#gop.length > 0 && this.#gop.length < MAX_GOP_FRAMES) {
      this.#gop.push(frame);
    } else {
      this.#gop = [];
    }
  }

  addAudio(packet: AudioPacket): void {
    this.#audio.push(packet);
    const keyframe = this.#gop[0];
    const oldest = packet.wallclockMs - AUDIO_HISTORY_MS;
    this.#trimAudio(keyframe ? Math.min(keyframe.wallclockMs, oldest) : oldest);
  }

  /** Frames after a loss do not decode: nothing is started from what came before it. */
  lost(): void {
    this.#gop = [];
  }

  /** Gives a new sink the cached keyframe and the frames since, then the audio captured since it. */
  replay(sink: MediaSink): void {
    const keyframe = this.#gop[0];
    if (!keyframe) return;
    for (const frame of this.#gop) sink.frame(frame);
    for (let i = this.#audioStart; i < this.#audio.length; i++) {
      const packet = this.#audio[i]!;
      if (packet.wallclockMs >= keyframe.wallclockMs) sink.audio(packet);
    }
  }

  clear(): void {
    this.#gop = [];
    this.#audio = [];
    this.#audioStart = 0;
  }

  /** Forgets audio captured before `ms`; the array is compacted once half of it is dropped. */
  #trimAudio(ms: number): void {
    const audio = this.#audio;
    let start = this.#audioStart;
    while (start < audio.length && audio[start]!.wallclockMs < ms) start++;
    if (start > 64 && start * 2 > audio.length) {
      this.#audio = audio.slice(start);
      start = 0;
    }
    this.#audioStart = start;
  }
}
