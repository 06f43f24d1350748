import { monotonicMs } from '../core/clock.js';
import { decodeAmf0, type Amf0Value } from '../media/amf0.js';
import { spsPictureSize } from '../media/h264.js';
import {
  FlvTagType,
  FourCc,
  fourCcNumber,
  isKeyframeBody,
  isSequenceHeader,
  isVideoSequenceHeader,
  type FlvTag,
} from '../media/flv.js';
import type { VideoCodec } from '../media/codecs.js';
import type { Picture, TagSource } from '../pipeline/pipeline.js';
import type { IngestHealth } from './health.js';
import { CaptionTrack, type TimedCaption } from '../captions/track.js';
import type { CaptionMode } from '../captions/cea608.js';
import { PushTimeline, type TimelineOrigin } from './timeline.js';
import type { TagSink, VideoFrame } from '../media/sinks.js';

export interface TagWriterOptions {
  sendMetadata: boolean;
  audioSampleRate: number;
  /**
   * onMetaData for the output size known so far and, of passed-through video, its codec (the
   * transcoded is H.264); its frame rate is the one sent.
   */
  metadata(size: { width: number; height: number } | undefined, codec?: VideoCodec): Record<string, Amf0Value>;
  /** An SPS whose picture size cannot be read. */
  onBadSps(): void;
  /** The output's picture size changed mid-stream (platforms dislike it: told in `find` and the log). */
  onResizeSent?(from: { width: number; height: number }, to: { width: number; height: number }): void;
  /** Measures what is sent, as a platform's dashboard would. */
  health?: IngestHealth;
  /** How its captions appear (roll-up by default). */
  captionMode?: CaptionMode;
  /** Time 0 of its timeline, shared with a twin push's. */
  origin?: TimelineOrigin;
}

/** onMetaData's `videocodecid` of passed-through video: FLV's 7 for H.264, else Enhanced RTMP's FourCC. */
const VIDEO_CODEC_IDS: Partial<Record<VideoCodec, number>> = { H264: 7, AV1: fourCcNumber(FourCc.AV1) };

/** onMetaData for video the gateway passes through; ffmpeg writes its own when it transcodes. */
export function passthroughMetadata(
  size: { width: number; height: number } | undefined,
  frameRate: number | undefined,
  audio: { sampleRate: number; bitrateKbps: number },
  codec: VideoCodec = 'H264',
): Record<string, Amf0Value> {
  return {
    ...(size ? { width: size.width, height: size.height } : {}),
    ...(frameRate ? { framerate: Math.round(frameRate * 100) / 100 } : {}),
    videocodecid: VIDEO_CODEC_IDS[codec] ?? 7,
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
 * Writes a push's FLV tags to its current link, whatever made them: frames the gateway passes
 * through (muxed here: H.264 as FLV, AV1 as Enhanced RTMP; a sequence header whenever the
 * decoder's configuration changes, then each frame) and the tags ffmpeg writes, each placed on the
 * `PushTimeline`. Remembers the latest H.264 keyframe sent, the picture shown while the publisher is
 * away, and the size of the picture sent.
 */
export class TagWriter {
  readonly timeline: PushTimeline;
  /** Video frames written, on every link. */
  frames = 0;
  /** When the first video frame was written. */
  firstFrameAt: number | undefined;
  size: { width: number; height: number } | undefined;
  /** Times the picture size sent changed after the first. */
  resolutionChanges = 0;
  #out: TagSink | undefined;
  /** The sequence header sent for the current source on the current link (AVC's, or a SequenceStart). */
  #configuration: Buffer | undefined;
  /** The latest AVC sequence header sent, and the latest keyframe after it. */
  #header: Buffer | undefined;
  #picture: Picture | undefined;
  /** From the push's first caption on. */
  #captions: CaptionTrack | undefined;
  /** The codec of the video passed through from the current source, once a frame of it came. */
  #passedCodec: VideoCodec | undefined;

  constructor(private readonly options: TagWriterOptions) {
    this.timeline = new PushTimeline(options.origin);
  }

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
    if (this.#passedCodec !== undefined && this.#passedCodec !== 'H264') return; // AV1 passed through carries none
    this.#captions ??= new CaptionTrack(({ timestamp, text, final }) => {
      // Where the link's media begins: its first keyframe (the frame carrying the cue, when it is that).
      const startTs = this.timeline.linkStartTs ?? timestamp;
      this.#out?.writeCaption?.({ linkMs: timestamp - startTs, text, final });
    }, this.options.captionMode);
    this.#captions.write(caption);
  }

  /** A new link: it starts with codec headers, and its audio waits for a keyframe when video is to come. */
  useLink(out: TagSink, videoToCome: boolean): void {
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
    this.#configuration = undefined;
    this.#passedCodec = undefined;
  }

  /**
   * A frame passed through: a sequence header first when the decoder's configuration is new (H.264's
   * SPS or PPS, AV1's sequence header), then the frame from a keyframe on. True when it went out.
   */
  writeFrame(frame: VideoFrame): boolean {
    const out = this.#out;
    if (!out) return false;
    const body = frame.flv;
    if (!body) return false; // VP8 and VP9: transcoded, never passed through
    const timestamp = this.timeline.frameTime(frame.captureMs);
    const { sequenceHeader } = frame;
    this.#passedCodec = frame.codec;
    // The still picture is made from H.264: none stands for other video.
    if (frame.codec !== 'H264') this.#picture = undefined;
    if (sequenceHeader && !this.#configuration?.equals(sequenceHeader)) {
      const first = !this.#configuration;
      this.#configuration = sequenceHeader;
      if (frame.size) this.#sizeSent(frame.size);
      else this.options.onBadSps();
      if (first && this.options.sendMetadata) out.writeMetadata(this.options.metadata(this.size, frame.codec));
      if (frame.codec === 'H264') this.#header = sequenceHeader;
      out.writeVideo(timestamp, sequenceHeader);
    }
    if (!this.#configuration) return false; // no decoder configuration yet: nothing decodable to send
    const h264 = frame.codec === 'H264';
    // The still picture is made from H.264; captions go in H.264's SEI (AV1 would carry them in ITU-T T.35 metadata OBUs).
    if (h264 && frame.key && this.#header) this.#picture = { header: this.#header, frame: body };
    const sent = h264 && this.#captions ? this.#captions.frame(body, timestamp, frame.captureMs) : body;
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
    const sequenceHeader = kind === 'video' ? isVideoSequenceHeader(tag.body) : isSequenceHeader(tag.body);
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
