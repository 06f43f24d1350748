import { monotonicMs } from '../core/clock.js';
import { decodeAmf0, type Amf0Value } from '../rtmp/amf0.js';
import { spsPictureSize } from '../media/h264.js';
import type { MediaKind } from '../media/codecs.js';
import { FlvTagType, isKeyframeBody, isSequenceHeader, type FlvTag } from '../media/flv.js';
import type { VideoFrame } from '../media/depacketizer.js';
import type { MediaOutput } from '../outputs/link.js';
import type { Picture, TagSource } from '../pipeline/pipeline.js';
import type { IngestHealth } from './health.js';
import { CaptionTrack, type TimedCaption } from '../captions/track.js';
import type { CaptionMode } from '../captions/cea608.js';

export interface OutputOptions {
  sendMetadata: boolean;
  audioSampleRate: number;
  /** onMetaData of passed-through video, for the output size known so far; its frame rate is the one sent. */
  metadata(size: { width: number; height: number } | undefined): Record<string, Amf0Value>;
  /** An SPS whose picture size cannot be read. */
  onBadSps(): void;
  /** The output's picture size changed mid-stream (platforms dislike it: told in `find` and the log). */
  onResizeSent?(from: { width: number; height: number }, to: { width: number; height: number }): void;
  /** Measures what is sent, as a platform's dashboard would. */
  health?: IngestHealth;
  /** How its captions appear (roll-up by default). */
  captionMode?: CaptionMode;
}

/** onMetaData for video the gateway passes through; ffmpeg writes its own when it transcodes. */
export function passthroughMetadata(
  size: { width: number; height: number } | undefined,
  frameRate: number | undefined,
  audio: { sampleRate: number; bitrateKbps: number },
): Record<string, Amf0Value> {
  return {
    ...(size ? { width: size.width, height: size.height } : {}),
    ...(frameRate ? { framerate: Math.round(frameRate * 100) / 100 } : {}),
    videocodecid: 7,
    audiocodecid: 10,
    audiosamplerate: audio.sampleRate,
    audiosamplesize: 16,
    stereo: true,
    audiodatarate: audio.bitrateKbps,
    encoder: 'webrtc-rtmp-gateway',
  };
}

/** The audio's fields of onMetaData. */
function audioMetadata(metadata: Record<string, Amf0Value>): Record<string, Amf0Value> {
  return Object.fromEntries(Object.entries(metadata).filter(([key]) => key.startsWith('audio') || key === 'stereo'));
}

/**
 * What goes out on the current link, whatever made it: frames the gateway passes through (muxed
 * here as FLV: a sequence header whenever SPS or PPS change, then each frame) and the tags ffmpeg
 * writes, each placed on the `OutputTimeline`. Remembers the latest keyframe sent, the picture
 * shown while the publisher is away, and the output's size.
 */
export class OutputWriter {
  readonly timeline = new OutputTimeline();
  /** Video frames written, on every link. */
  frames = 0;
  /** When the first video frame was written. */
  firstFrameAt: number | undefined;
  size: { width: number; height: number } | undefined;
  /** Times the picture size sent changed after the first. */
  resolutionChanges = 0;
  #out: MediaOutput | undefined;
  /** SPS and PPS of the sequence header sent for the current source on the current link. */
  #sps: Buffer | undefined;
  #pps: Buffer | undefined;
  /** The latest AVC sequence header sent, and the latest keyframe after it. */
  #header: Buffer | undefined;
  #picture: Picture | undefined;
  /** From the push's first caption on. */
  #captions: CaptionTrack | undefined;

  constructor(private readonly options: OutputOptions) {}

  /** What its captions did, once it had one. */
  get captions(): { sent: number; replaced: number; dropped: number } | undefined {
    const track = this.#captions;
    return track && { sent: track.sent, replaced: track.replaced, dropped: track.dropped };
  }

  /** How long an AAC frame lasts (ms): 1024 samples. */
  get audioFrameMs(): number {
    return (1024 / this.options.audioSampleRate) * 1000;
  }

  /** The latest keyframe sent of live video, with its sequence header. */
  get picture(): Picture | undefined {
    return this.#picture;
  }

  /** A caption (CEA-608 in the video sent), from the first frame captured at its time on. */
  caption(caption: TimedCaption): void {
    this.#captions ??= new CaptionTrack(({ timestamp, text, final }) => {
      // Where the link's media begins: its first keyframe (the frame carrying the cue, when it is that).
      const startTs = this.timeline.linkStartTs ?? timestamp;
      this.#out?.writeCaption?.({ linkMs: timestamp - startTs, text, final });
    }, this.options.captionMode);
    this.#captions.write(caption);
  }

  /** A new link: it starts with codec headers, and its audio waits for a keyframe when video is to come. */
  useLink(out: MediaOutput, videoToCome: boolean): void {
    this.#out = out;
    this.timeline.newLink(videoToCome);
    this.options.health?.restart();
    this.newSource();
  }

  dropLink(): void {
    this.#out = undefined;
  }

  /** A new source of passed-through video: its sequence header and metadata are sent again. */
  newSource(): void {
    this.#sps = undefined;
    this.#pps = undefined;
  }

  /**
   * A frame passed through: a sequence header first when its parameter sets are new, then the frame
   * from a keyframe on. True when it went out.
   */
  writeFrame(frame: VideoFrame): boolean {
    const out = this.#out;
    if (!out) return false;
    const body = frame.flv;
    if (!body) return false; // not H.264: transcoded, never passed through
    const timestamp = this.timeline.frameTime(frame.captureMs);
    const { sps, pps, sequenceHeader } = frame;
    if (sps && pps && sequenceHeader && !(this.#sps?.equals(sps) && this.#pps?.equals(pps))) {
      const first = !this.#sps;
      this.#sps = sps;
      this.#pps = pps;
      if (frame.size) this.#sizeSent(frame.size);
      else this.options.onBadSps();
      if (first && this.options.sendMetadata) out.writeMetadata(this.options.metadata(this.size));
      this.#header = sequenceHeader;
      out.writeVideo(timestamp, sequenceHeader);
    }
    if (!this.#sps) return false; // no decoder configuration yet: nothing decodable to send
    if (frame.key && this.#header) this.#picture = { header: this.#header, frame: body };
    const sent = this.#captions ? this.#captions.frame(body, timestamp, frame.captureMs) : body;
    out.writeVideo(timestamp, sent);
    this.options.health?.video(timestamp, sent.length, frame.key);
    this.timeline.placeFrame(timestamp);
    this.firstFrameAt ??= monotonicMs();
    this.frames++;
    return true;
  }

  /**
   * A tag from ffmpeg, its time mapped onto the publisher's clock. Codec headers always go through;
   * frames start on each link with a video keyframe.
   */
  writeTag(tag: FlvTag, source: TagSource): void {
    const out = this.#out;
    if (!out) return;
    if (tag.type === FlvTagType.SCRIPT) {
      // Passing video through, ffmpeg describes only the audio, and the still picture is no new
      // stream: the gateway's own onMetaData stands.
      if (!source.transcoding || source.still || !this.options.sendMetadata) return;
      const [, metadata] = decodeAmf0(tag.body);
      // ffmpeg writes the video's and the audio's in outputs of their own: the audio is described as the gateway encodes it.
      // Its frame rate is the one sent (asked for, or the source's as measured), not ffmpeg's guess
      // from the first timestamps (40 for a browser's uneven 20 fps).
      const ours = this.options.metadata(undefined);
      if (metadata && typeof metadata === 'object') {
        out.writeMetadata({
          ...audioMetadata(ours),
          ...(metadata as Record<string, Amf0Value>),
          ...(ours.framerate !== undefined ? { framerate: ours.framerate } : {}),
          encoder: 'webrtc-rtmp-gateway',
        });
      }
      return;
    }
    const kind = tag.type === FlvTagType.VIDEO ? 'video' : tag.type === FlvTagType.AUDIO ? 'audio' : undefined;
    if (!kind || (kind === 'video' && source.audioOnly)) return;
    const startMs = kind === 'audio' ? source.audioStartMs : source.videoStartMs;
    if (startMs === undefined) return;
    const sequenceHeader = isSequenceHeader(tag.body);
    const keyframe = kind === 'video' && isKeyframeBody(tag.body);
    const primingMs = kind === 'audio' ? this.audioFrameMs : 0;
    const timestamp = this.timeline.placeTag(
      { kind, timestamp: tag.timestamp, sequenceHeader, keyframe },
      startMs,
      source.shiftMs,
      primingMs,
    );
    if (timestamp === undefined) return;
    if (kind === 'audio') {
      out.writeAudio(timestamp, tag.body);
      this.options.health?.audio(timestamp, tag.body);
      return;
    }
    let body = tag.body;
    if (sequenceHeader) {
      this.#sizeFromConfiguration(body.subarray(5));
      if (!source.still) this.#header = body;
    } else {
      this.firstFrameAt ??= monotonicMs();
      this.frames++;
      if (keyframe && !source.still && this.#header) this.#picture = { header: this.#header, frame: body };
      if (this.#captions) body = this.#captions.frame(body, timestamp, startMs + tag.timestamp);
      this.options.health?.video(timestamp, body.length, keyframe);
    }
    out.writeVideo(timestamp, body);
  }

  /** The picture size of what goes out now. */
  #sizeSent(size: { width: number; height: number }): void {
    const before = this.size;
    this.size = size;
    if (before && (before.width !== size.width || before.height !== size.height)) {
      this.resolutionChanges++;
      this.options.health?.resized();
      this.options.onResizeSent?.(before, size);
    }
  }

  /** Output size of transcoded video, from the SPS in its decoder configuration record. */
  #sizeFromConfiguration(record: Buffer): void {
    if (record.length < 8) return;
    const length = record.readUInt16BE(6);
    if (record.length < 8 + length) return;
    let size: { width: number; height: number };
    try {
      size = spsPictureSize(record.subarray(8, 8 + length));
    } catch {
      this.options.onBadSps();
      return;
    }
    this.#sizeSent(size);
  }
}

/** A tag of ffmpeg's output as the timeline sees it. */
export interface PipelineTag {
  kind: MediaKind;
  /** ffmpeg's timestamp (ms): time 0 is the start of its input of this kind. */
  timestamp: number;
  sequenceHeader: boolean;
  keyframe: boolean;
}

/**
 * The output's RTMP timeline. Every timestamp is a moment on the publisher's clock, the first media
 * placed being time 0, so the tracks stay in sync whatever carried them (the gateway passing video
 * through, ffmpeg encoding audio or transcoding video) and across links, pipelines and publishers.
 * Each track's timestamps never go back, and video frames' always go forward (a frame captured
 * before the last one sent goes a millisecond after it: FLV readers take equal times for a fault).
 * On each link, frames start with a video keyframe and
 * audio waits for it when video is to come. Pure: no I/O, no clock.
 */
export class OutputTimeline {
  /** Publisher clock (ms) of RTMP timestamp 0. */
  #baseMs: number | undefined;
  readonly #last = { audio: 0, video: 0 };
  /** RTMP time of the last audio frame (not a sequence header) placed. */
  #lastAudioFrame: number | undefined;
  /** RTMP time of the last video frame (not a sequence header) placed. */
  #lastVideoFrame = -1;
  /** RTMP time of the current link's first video keyframe: audio before it is not sent. */
  #linkStartTs: number | undefined;

  /** The latest timestamp placed of a track. */
  last(kind: MediaKind): number {
    return this.#last[kind];
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
    this.#baseMs ??= captureMs;
    return Math.round(captureMs - this.#baseMs);
  }

  /** Whether the output can start (again) at a keyframe captured at `captureMs`: nothing was placed yet, or all of it before. */
  canStartAt(captureMs: number): boolean {
    return this.#baseMs === undefined || this.isAhead(captureMs);
  }

  /** Whether a keyframe captured at `captureMs` comes after all video placed so far. */
  isAhead(captureMs: number): boolean {
    return this.#baseMs !== undefined && captureMs - this.#baseMs > this.#last.video;
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
