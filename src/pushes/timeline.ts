import type { MediaKind } from '../media/codecs.js';

/** A tag of ffmpeg's output as the timeline sees it. */
export interface PipelineTag {
  kind: MediaKind;
  /** ffmpeg's timestamp (ms): time 0 is the start of its input of this kind. */
  timestamp: number;
  sequenceHeader: boolean;
  keyframe: boolean;
}

/** Where a timeline's time 0 is on the publisher's clock (ms), once known. */
export interface TimelineOrigin {
  baseMs?: number;
}

/**
 * A push's RTMP timeline. Every timestamp is a moment on the publisher's clock, the first media
 * placed being time 0, so the tracks stay in sync whatever carried them (the gateway passing video
 * through, ffmpeg encoding audio or transcoding video) and across links, pipelines and publishers.
 * Each track's timestamps never go back, and video frames' always go forward (a frame captured
 * before the last one sent goes a millisecond after it: FLV readers take equal times for a fault).
 * On each link, frames start with a video keyframe and
 * audio waits for it when video is to come. Pure: no I/O, no clock.
 */
export class PushTimeline {
  readonly #last = { audio: 0, video: 0 };
  /** RTMP time of the last audio frame (not a sequence header) placed. */
  #lastAudioFrame: number | undefined;
  /** RTMP time of the last video frame (not a sequence header) placed. */
  #lastVideoFrame = -1;
  /** RTMP time of the current link's first video keyframe: audio before it is not sent. */
  #linkStartTs: number | undefined;

  /**
   * `origin`: the publisher-clock time of RTMP timestamp 0, set by the first moment asked. A twin
   * push shares its primary's, so that both send each frame at the same time.
   */
  constructor(readonly origin: TimelineOrigin = {}) {}

  /** The latest timestamp placed of a track. */
  last(kind: MediaKind): number {
    return this.#last[kind];
  }

  /** Whether any frame, of sound or picture, was placed yet (on any link). */
  get placedAny(): boolean {
    return this.#lastAudioFrame !== undefined || this.#lastVideoFrame >= 0;
  }

  /** Whether anything was placed on the current link yet from a video keyframe on. */
  get linkStarted(): boolean {
    return this.#linkStartTs !== undefined;
  }

  /** RTMP time of the current link's first video keyframe, once placed. */
  get linkStartTs(): number | undefined {
    return this.#linkStartTs;
  }

  /** RTMP timestamp of a moment on the publisher's clock; the first moment asked is time 0. */
  at(captureMs: number): number {
    this.origin.baseMs ??= captureMs;
    return Math.round(captureMs - this.origin.baseMs);
  }

  /** Whether the output can start (again) at a keyframe captured at `captureMs`: nothing was placed yet, or all of it before. */
  canStartAt(captureMs: number): boolean {
    return this.origin.baseMs === undefined || this.isAhead(captureMs);
  }

  /** Whether a keyframe captured at `captureMs` comes after all video placed so far. */
  isAhead(captureMs: number): boolean {
    return this.origin.baseMs !== undefined && captureMs - this.origin.baseMs > this.#last.video;
  }

  /** A new link begins: its audio waits for its first keyframe when video is to come. */
  newLink(videoToCome: boolean): void {
    this.#linkStartTs = videoToCome ? undefined : this.#last.audio;
  }

  /** Where a passed-through frame captured at `captureMs` goes; `placeFrame` then commits it. */
  frameTime(captureMs: number): number {
    return Math.max(this.#last.video, this.#lastVideoFrame + 1, this.at(captureMs));
  }

  /** A video frame (not a sequence header) was written at `timestamp`. */
  placeFrame(timestamp: number): void {
    this.#linkStartTs ??= timestamp;
    this.#last.video = timestamp;
    this.#lastVideoFrame = timestamp;
  }

  /**
   * Where a tag of ffmpeg goes, or undefined to leave it out: `startMs` is the publisher-clock time
   * of ffmpeg's time 0 for the tag's kind, `shiftMs` what a pipeline that took over is moved on by,
   * `primingMs` the encoder's priming (AAC's 1024 samples, moved to time 0 in FLV).
   */
  placeTag(tag: PipelineTag, startMs: number, shiftMs: number, primingMs: number): number | undefined {
    const { kind, sequenceHeader } = tag;
    let timestamp = this.at(startMs + tag.timestamp - primingMs) + Math.round(shiftMs);
    if (timestamp < 0 && !sequenceHeader) return undefined; // the encoder's priming
    // Audio of a new pipeline from before what was already sent (a hand-over) would overlap it, and
    // one at the very time of the last audio frame would repeat it.
    if (
      kind === 'audio' &&
      !sequenceHeader &&
      (timestamp < this.#last.audio || timestamp <= (this.#lastAudioFrame ?? -1))
    )
      return undefined;
    timestamp = Math.max(this.#last[kind], timestamp);
    if (!sequenceHeader) {
      if (kind === 'audio' && (this.#linkStartTs === undefined || timestamp < this.#linkStartTs)) return undefined;
      if (kind === 'video' && this.#linkStartTs === undefined && !tag.keyframe) return undefined;
      if (kind === 'video') {
        timestamp = Math.max(timestamp, this.#lastVideoFrame + 1);
        this.#linkStartTs ??= timestamp;
        this.#lastVideoFrame = timestamp;
      } else this.#lastAudioFrame = timestamp;
    }
    this.#last[kind] = timestamp;
    return timestamp;
  }

  /**
   * How far a pipeline that takes over is moved on: its first keyframe, captured at
   * `keyframeCaptureMs`, goes one frame after the last video placed.
   */
  shiftFor(keyframeCaptureMs: number, frameMs: number): number {
    return Math.max(0, this.#last.video + frameMs - this.at(keyframeCaptureMs));
  }
}
