import type { MediaKind } from '../media/codecs.js';
import type { MediaPacket } from '../media/rtp.js';

/** A packet as sinks receive it: its fields, its kind and its time on the publisher's clock. */
export interface CachedPacket extends MediaPacket {
  kind: MediaKind;
  /** Capture time on the publisher's clock (ms). */
  wallclockMs: number;
}

/**
 * Upper bound of the cached group of pictures, in packets (~5 s of 720p at 2.5 Mb/s). A GOP larger
 * than this is not cached: a new sink then waits for the next keyframe instead.
 */
const MAX_GOP_PACKETS = 3000;
/** Audio kept to start a new sink in step with the cached keyframe's capture time. */
const AUDIO_HISTORY_MS = 4000;

interface RecentAudio {
  packet: CachedPacket;
  /** Arrival order among all packets. */
  arrival: number;
}

/**
 * What a new sink is started from, so it begins at a keyframe at once instead of waiting for the
 * next one: the group of pictures since the last keyframe, the frame before that keyframe, and the
 * audio captured with it. Fed every packet in arrival order.
 */
export class StartCache {
  #gop: CachedPacket[] = [];
  #gopTimestamp: number | undefined;
  /** Capture time of the cached keyframe and the arrival count when it came. */
  #gopStart = { wallclockMs: 0, arrival: 0 };
  #leadIn: CachedPacket[] = [];
  #frame: CachedPacket[] = [];
  #frameIsKey = false;
  #previousFrame: CachedPacket[] = [];
  #previousFrameIsKey = false;
  #recentAudio: RecentAudio[] = [];
  #arrivals = 0;

  /**
   * Whether a keyframe, the (non-key) frame before it and what followed are cached. The stream's
   * first frame is a keyframe with no frame before it, so it never qualifies.
   */
  get ready(): boolean {
    return this.#gopTimestamp !== undefined && this.#leadIn.length > 0;
  }

  /** Capture time of the cached keyframe (ms), when there is one. */
  get keyframeWallclockMs(): number | undefined {
    return this.#gopTimestamp === undefined ? undefined : this.#gopStart.wallclockMs;
  }

  /** Adds a video packet; true when it starts a new keyframe. */
  addVideo(packet: CachedPacket, keyStart: boolean): boolean {
    const arrival = ++this.#arrivals;
    this.#trackFrames(packet, keyStart);
    const newKeyframe = keyStart && packet.timestamp !== this.#gopTimestamp;
    if (newKeyframe) {
      this.#gop = [];
      this.#gopTimestamp = packet.timestamp;
      this.#leadIn = this.#previousFrameIsKey ? [] : this.#previousFrame;
      this.#gopStart = { wallclockMs: packet.wallclockMs, arrival };
    }
    this.#addToGop(packet);
    return newKeyframe;
  }

  addAudio(packet: CachedPacket): void {
    const arrival = ++this.#arrivals;
    const recent = this.#recentAudio;
    recent.push({ packet, arrival });
    while (recent.length > 0 && recent[0]!.packet.wallclockMs < packet.wallclockMs - AUDIO_HISTORY_MS) recent.shift();
    this.#addToGop(packet);
  }

  /** Writes what a new sink starts from, oldest first. */
  replay(write: (packet: CachedPacket) => void): void {
    // The frame before the keyframe goes first: a sink's timeline starts with the first packet it
    // gets, one frame ahead of the keyframe its video starts with (frames themselves come from the
    // publisher's FrameStage, from the keyframe on).
    for (const p of this.#leadIn) write(p);
    // Audio captured after the keyframe but received before it (video is encoded and sent later
    // than audio) goes next, so the new sink's audio starts with its video.
    for (const { packet, arrival } of this.#recentAudio) {
      if (arrival < this.#gopStart.arrival && packet.wallclockMs >= this.#gopStart.wallclockMs) write(packet);
    }
    for (const p of this.#gop) write(p);
  }

  clear(): void {
    this.#gop = this.#leadIn = this.#frame = this.#previousFrame = this.#recentAudio = [];
    this.#gopTimestamp = undefined;
  }

  #addToGop(packet: CachedPacket): void {
    if (this.#gopTimestamp === undefined) return;
    this.#gop.push(packet);
    if (this.#gop.length > MAX_GOP_PACKETS) {
      this.#gop = [];
      this.#gopTimestamp = undefined;
    }
  }

  /** Keeps the packets of the current and the previous video frame. */
  #trackFrames(packet: CachedPacket, keyStart: boolean): void {
    if (this.#frame[0] && this.#frame[0].timestamp !== packet.timestamp) {
      this.#previousFrame = this.#frame;
      this.#previousFrameIsKey = this.#frameIsKey;
      this.#frame = [];
      this.#frameIsKey = false;
    }
    this.#frame.push(packet);
    if (keyStart) this.#frameIsKey = true;
  }
}
