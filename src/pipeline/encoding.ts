import { GatewayError } from '../core/errors.js';
import type { Overlay } from './overlays.js';
import { evenUp, planShape, type PictureShape, type ShapeRequest } from './shape.js';
import type { VideoCodec } from '../media/codecs.js';
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
}

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
 * preservation off; fps or keyFrameInterval transcode. VP8, VP9 and AV1 sources always transcode to H.264.
 * The gateway's own: `aspect` transcodes to a picture of that shape (`height` tall when given).
 */
export function planEncoding(source: VideoCodec, request: VideoRequest, settings: EncodingSettings): EncodingPlan {
  const height = request.height || 0;
  const width = request.width || 0;
  const fps = request.fps || 0;
  const keyFrameInterval = request.keyFrameInterval || 0;
  const videoBitrate = request.videoBitrate || 0;
  const audio = request.audioBitrate ? { audioBitrateKbps: request.audioBitrate } : {};
  const reasons: string[] = [];
  if (source !== 'H264') reasons.push(`source codec ${source} is not H.264`);
  const shape = planShape(request);
  if (shape) reasons.push(`aspect ${shape.aspect} requested`);
  else if (height) reasons.push(`height ${height} requested`);
  if (fps) reasons.push(`fps ${fps} requested`);
  if (keyFrameInterval) reasons.push(`keyFrameInterval ${keyFrameInterval} requested`);
  if (videoBitrate) reasons.push(`videoBitrate ${videoBitrate} requested`);
  const overlays = request.overlays ?? [];
  if (overlays.length) reasons.push(`${overlays.length} overlay${overlays.length > 1 ? 's' : ''} requested`);
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
