import { GatewayError, invalid } from '../core/errors.js';
import type { Overlay } from './overlays.js';
import { evenUp, planShape, type PictureShape, type ShapeRequest } from './shape.js';
import type { VideoCodec } from '../media/codecs.js';
import {
  ANY_RTMP_SERVER,
  type DestinationCodecs,
  type RequestedCodec,
  type RtmpVideoCodec,
} from '../links/platforms.js';
import type { LayerName } from '../publishers/layer-names.js';

/** What a startup request asks of the output video; 0 or absent means "as the source". */
export interface VideoRequest extends ShapeRequest {
  width?: number;
  height?: number;
  fps?: number;
  /** Keyframe interval in frames, as Web Call Server counts it. */
  keyFrameInterval?: number;
  /** Video bitrate of the transcoded output, kbps (transcodes). */
  videoBitrate?: number;
  /** AAC bitrate, kbps (no transcoding of video needed). */
  audioBitrate?: number;
  /** Images laid over the picture, their files found (transcodes). */
  overlays?: readonly Overlay[];
  /** A simulcast layer by name, or the tallest up to this height: sent as it comes, or transcoded to its size without simulcast. */
  layer?: LayerName | number;
  /** When the browser stops sending that layer: `switch` to the next one down and back, or `pin` it (standby until it is back). */
  layerPolicy?: 'switch' | 'pin';
  /** The video codec sent: the stream's as it is (`passthrough`), or H.264, AV1, HEVC; by the destination when absent. */
  videoCodec?: RequestedCodec;
}

/** The stream's codecs that RTMP can carry as they are (VP8 has no RTMP form; VP9's is not written here). */
const PASSABLE: ReadonlySet<VideoCodec> = new Set(['H264', 'AV1']);

const CODEC_TITLES: Record<RtmpVideoCodec, string> = { H264: 'H.264', AV1: 'AV1', HEVC: 'HEVC' };
const listed = (codecs: readonly RtmpVideoCodec[]): string => codecs.map((c) => CODEC_TITLES[c]).join(', ');

export interface EncodingSettings {
  keepAspectRatio: boolean;
  transcodingEnabled: boolean;
  videoBitrateKbps: number;
  preset: string;
  audioBitrateKbps: number;
  /** ffmpeg's AAC coder (`-aac_coder`). */
  aacCoder: 'fast' | 'twoloop';
  audioSampleRate: number;
  /** Keyframe spacing for transcoded output when the request names none, in seconds. */
  keyframeIntervalS: number;
}

export type EncodingPlan = (
  | { video: 'copy' }
  | {
      video: 'transcode';
      reason: string;
      /** ffmpeg scale target; -2 keeps the aspect ratio with an even size. */
      scale?: { width: number; height: number };
      /** A shape of its own (9:16): its size is the output's, and `scale` is not used. */
      shape?: PictureShape;
      fps?: number;
      keyFrameInterval?: number;
      videoBitrateKbps?: number;
      overlays?: readonly Overlay[];
    }
) & {
  /** AAC bitrate when the request set one. */
  audioBitrateKbps?: number;
};

/**
 * Web Call Server's transcoding rules: no width/height/fps/keyFrameInterval (or all 0) passes H.264
 * through; height transcodes to that height; width counts only with height and aspect-ratio
 * preservation off; fps or keyFrameInterval transcode. The gateway's own: `aspect` transcodes to a
 * picture of that shape (`height` tall when given); an AV1 stream passes through to a destination
 * that takes AV1 (Enhanced RTMP), and is transcoded to H.264 for any other; VP8 and VP9 always are.
 * `videoCodec` asks for a codec: `passthrough` and `av1` send the stream as it is, refused (naming the
 * field) where the destination or the other fields rule that out; `h264` transcodes all but H.264.
 */
export function planEncoding(
  source: VideoCodec,
  request: VideoRequest,
  settings: EncodingSettings,
  destination: DestinationCodecs = ANY_RTMP_SERVER,
): EncodingPlan {
  const height = request.height || 0;
  const width = request.width || 0;
  const fps = request.fps || 0;
  const keyFrameInterval = request.keyFrameInterval || 0;
  const videoBitrate = request.videoBitrate || 0;
  const audio = request.audioBitrate ? { audioBitrateKbps: request.audioBitrate } : {};
  const reasons: string[] = [];
  const shape = planShape(request);
  if (shape) reasons.push(`aspect ${shape.aspect} requested`);
  else if (height) reasons.push(`height ${height} requested`);
  if (fps) reasons.push(`fps ${fps} requested`);
  if (keyFrameInterval) reasons.push(`keyFrameInterval ${keyFrameInterval} requested`);
  if (videoBitrate) reasons.push(`videoBitrate ${videoBitrate} requested`);
  const overlays = request.overlays ?? [];
  if (overlays.length) reasons.push(`${overlays.length} overlay${overlays.length > 1 ? 's' : ''} requested`);
  const asked = request.videoCodec;
  if (asked === 'hevc' || asked === 'av1' || asked === 'passthrough') {
    checkPassthrough(source, asked, reasons, destination);
    return { video: 'copy', ...audio };
  }
  const takes = (destination.codecs as readonly string[]).includes(source);
  if (source !== 'H264' && (asked === 'h264' || !takes)) reasons.unshift(`source codec ${source} is not H.264`);
  if (reasons.length === 0) return { video: 'copy', ...audio };
  if (!settings.transcodingEnabled) {
    throw new GatewayError(
      'not_supported',
      `transcoding is disabled in the configuration but needed: ${reasons.join(', ')}`,
    );
  }
  return {
    video: 'transcode',
    reason: reasons.join(', '),
    ...(shape ? { shape } : {}),
    ...(height && !shape
      ? { scale: { width: width && !settings.keepAspectRatio ? evenUp(width) : -2, height: evenUp(height) } }
      : {}),
    ...(fps ? { fps } : {}),
    ...(keyFrameInterval ? { keyFrameInterval } : {}),
    ...(videoBitrate ? { videoBitrateKbps: videoBitrate } : {}),
    ...(overlays.length ? { overlays } : {}),
    ...audio,
  };
}

/** Refuses, naming `videoCodec`, a codec asked for that cannot be sent as the stream is. */
function checkPassthrough(
  source: VideoCodec,
  asked: 'passthrough' | 'av1' | 'hevc',
  reasons: readonly string[],
  destination: DestinationCodecs,
): void {
  if (asked === 'hevc') {
    // An HEVC encoder would need an Enhanced RTMP muxer ffmpeg 5.1 lacks, and no HEVC stream can be published.
    throw invalid('videoCodec', 'hevc is passed through only, and no HEVC stream can be published to this gateway');
  }
  if (asked === 'av1' && source !== 'AV1') {
    throw invalid('videoCodec', `av1 is passed through only, never encoded here: the stream is ${source}`);
  }
  if (!PASSABLE.has(source)) {
    throw invalid(
      'videoCodec',
      `passthrough: the stream is ${source}, which RTMP cannot carry as it is (H.264 and AV1 pass)`,
    );
  }
  const codec = source as RtmpVideoCodec;
  if (destination.strict && !destination.codecs.includes(codec)) {
    throw invalid(
      'videoCodec',
      `${asked}: ${destination.by} takes ${listed(destination.codecs)} only, not ${CODEC_TITLES[codec]}`,
    );
  }
  if (reasons.length) {
    throw invalid(
      'videoCodec',
      `${asked} sends the stream's video as it is, but ${reasons.join(', ')} needs a transcode`,
    );
  }
}
