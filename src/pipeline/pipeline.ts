import type { SoundSource } from '../audio/pcm-timeline.js';
import type { VideoCodec } from '../media/codecs.js';
import type { FlvTag } from '../media/flv.js';
import type { EncodingPlan } from './encoding.js';
import type { FailureKind } from '../links/failures.js';
import type { AudioPacket, VideoFrame } from '../media/sinks.js';

/** Where a pipeline's tags come from, for placing them on the timeline. */
export interface TagSource {
  /** Publisher-clock time of ffmpeg's audio time 0 (the audio timeline's first sample). */
  audioStartMs?: number;
  /** Publisher-clock time of ffmpeg's video time 0 (the first video it was given). */
  videoStartMs?: number;
  /** What a pipeline that took over is moved on by (ms). */
  shiftMs: number;
  /** It shows the still picture. */
  still: boolean;
  /** Only its audio goes out: live video passed through has replaced its still picture. */
  audioOnly?: boolean;
  /** ffmpeg carries the publisher's video (it transcodes). */
  transcoding: boolean;
}

/** A keyframe and the sequence header it decodes with: what the still picture shows. */
export interface Picture {
  header: Buffer;
  frame: Buffer;
}

/** What a pipeline is made for. */
export interface PipelineSpec {
  plan: EncodingPlan;
  /** The publisher's video codec, when ffmpeg transcodes it. */
  video?: VideoCodec;
  /** The picture shown while the publisher is away, at this frame rate. */
  still?: { picture: Picture; fps: number };
  muted: boolean;
  sound: SoundSource | undefined;
  /**
   * The publisher's Opus goes to ffmpeg as it is (Ogg on its stdin), which decodes it: nothing is
   * decoded or mixed in the gateway. Such a pipeline cannot mix a sound in (`setSound` says so).
   */
  opus?: boolean;
  /** The stream it encodes (its publisher): pipelines of one stream that make the same output share one ffmpeg (`SharedEncoders`). */
  stream?: object;
  /**
   * Whether the output can start at a keyframe captured then (nothing later went out on it): a
   * shared rendition gives such a push its last keyframe and what followed, not the next one.
   */
  canStartAt?: (keyframeCaptureMs: number) => boolean;
  /**
   * For a new push (nothing went out on its output yet) that the publisher's pictures begin, most
   * often at a keyframe sent before it joined: whether its first picture went out. From then on, a
   * shared AAC encoder gives it its sound from before it joined, kept, once, so that its sound
   * starts with its first picture rather than up to a keyframe interval later.
   */
  pictureStarted?: () => boolean;
}

/** Where a packet's samples come from, decoded on demand once for all pushes: its publisher. */
export interface PcmSource {
  audioPcm(packet: AudioPacket): Int16Array | undefined;
}

/** The local half of an output, replaced as a whole: what makes its audio (and transcoded video). */
export interface Pipeline {
  /**
   * Resolves at the first output; rejects with an `OpenError` if the pipeline is lost first, its
   * start-up timeout included: the pipeline owns that deadline (the loss is also told to `onLost`).
   */
  readonly output: Promise<void>;
  /** Where its tags go on the timeline (`shiftMs` is set by a hand-over). */
  readonly source: TagSource;
  /** Starts the audio timeline (and the still picture's) at this publisher-clock time, if not started. */
  begin(captureMs: number): void;
  /** A packet of the publisher's audio: passed as it is, or its samples (asked of `pcm`) mixed. */
  writeAudio(packet: AudioPacket, pcm: PcmSource): void;
  /** A frame of the publisher's video, for a pipeline that transcodes (from a keyframe on). */
  writeVideo(frame: VideoFrame): void;
  /** Mutes or unmutes; false when it cannot here (its encoder is shared with other pushes): one of this push's own must take over. */
  setMuted(muted: boolean): boolean;
  /** Plays `sound` over the audio; false when this pipeline cannot mix (it passes the Opus as it is): one that can must take over. */
  setSound(sound: SoundSource | undefined): boolean;
  /** Whether it can mix a sound in. */
  readonly mixes: boolean;
  /**
   * Since when (monotonic ms) its ffmpeg has not kept up, the machine out of CPU: its audio is
   * being discarded to catch up, or it has written nothing for a while on a saturated machine.
   * Undefined while it keeps up.
   */
  readonly behindSince: number | undefined;
  /** Milliseconds of audio discarded so that its ffmpeg could catch up. */
  readonly audioDiscardedMs: number;
  /** Other pushes whose output comes from the same encoder (a shared rendition); none when its own. */
  readonly sharedWith?: number;
  /** Its ffmpeg's process id, while one runs: what it costs the machine is read there. */
  readonly pid?: number;
  /** Tags it writes, and its end (with why, and what kind of failure) once: each listener set once. */
  onTags(listener: (tags: FlvTag[]) => void): void;
  onLost(listener: (reason: string, kind: FailureKind) => void): void;
  close(): Promise<void>;
}

export type PipelineFactory = (spec: PipelineSpec) => Promise<Pipeline>;
