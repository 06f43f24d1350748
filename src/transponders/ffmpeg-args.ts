import { FFMPEG_PAYLOAD_TYPE, OPUS_CLOCK_RATE, VIDEO_CLOCK_RATE, type VideoCodec } from '../media/codecs.js';
import type { EncodingPlan, EncodingSettings } from './encoding.js';

export interface RtpInput {
  video?: { codec: VideoCodec; port: number; spropParameterSets?: string };
  audio?: { port: number };
}

/**
 * The SDP file ffmpeg reads its RTP input from. A file rather than a pipe: ffmpeg ignores stdin
 * commands (used to stop it with `q`) when an input is `pipe:`.
 */
export function buildInputSdp(input: RtpInput): string {
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=transponder', 'c=IN IP4 127.0.0.1', 't=0 0'];
  if (input.video) {
    const pt = FFMPEG_PAYLOAD_TYPE[input.video.codec];
    lines.push(`m=video ${input.video.port} RTP/AVP ${pt}`, `a=rtpmap:${pt} ${input.video.codec}/${VIDEO_CLOCK_RATE}`);
    if (input.video.codec === 'H264') {
      const sprop = input.video.spropParameterSets ? `;sprop-parameter-sets=${input.video.spropParameterSets}` : '';
      lines.push(`a=fmtp:${pt} packetization-mode=1${sprop}`);
    }
  }
  if (input.audio) {
    const pt = FFMPEG_PAYLOAD_TYPE.opus;
    lines.push(`m=audio ${input.audio.port} RTP/AVP ${pt}`, `a=rtpmap:${pt} opus/${OPUS_CLOCK_RATE}/2`);
  }
  return lines.join('\n') + '\n';
}

export interface FfmpegJob {
  sdpPath: string;
  /** What ffmpeg reads: audio, and video only when it transcodes it. */
  input: RtpInput;
  plan: EncodingPlan;
  settings: EncodingSettings;
  /** How long ffmpeg probes the input before it starts writing, in microseconds. */
  analyzeDurationUs: number;
}

/**
 * ffmpeg's argument array: RTP in (from the SDP file), FLV tags out on stdout, which the gateway
 * forwards to the destination itself. ffmpeg never sees the destination, so no URL or stream key
 * is in its arguments, and it can reach no network: inputs are limited to file, udp and rtp.
 */
export function buildFfmpegArgs(job: FfmpegJob): string[] {
  const { input, plan, settings } = job;
  const args = [
    '-hide_banner',
    '-nostats',
    '-loglevel', 'level+info',
    '-protocol_whitelist', 'file,udp,rtp',
    '-analyzeduration', String(job.analyzeDurationUs),
    '-i', job.sdpPath,
  ];
  if (input.video) {
    args.push('-map', '0:v:0');
    if (plan.video === 'copy') args.push('-c:v', 'copy');
    else args.push(...x264Args(plan, settings));
  }
  if (input.audio) {
    args.push(
      '-map', '0:a:0',
      '-c:a', 'aac',
      '-b:a', `${plan.audioBitrateKbps ?? settings.audioBitrateKbps}k`,
      '-ar', String(settings.audioSampleRate),
      '-ac', '2',
    );
  }
  args.push('-f', 'flv', '-flvflags', 'no_duration_filesize', '-flush_packets', '1', 'pipe:1');
  return args;
}

function x264Args(plan: Extract<EncodingPlan, { video: 'transcode' }>, settings: EncodingSettings): string[] {
  const filters: string[] = [];
  if (plan.scale) filters.push(`scale=${plan.scale.width}:${plan.scale.height}`);
  if (plan.fps) filters.push(`fps=${plan.fps}`);
  const kbps = plan.videoBitrateKbps ?? settings.videoBitrateKbps;
  const gop = plan.keyFrameInterval
    ? ['-g', String(plan.keyFrameInterval), '-keyint_min', String(plan.keyFrameInterval)]
    : ['-force_key_frames', `expr:gte(t,n_forced*${settings.keyframeIntervalS})`];
  return [
    ...(filters.length ? ['-vf', filters.join(',')] : []),
    '-c:v', 'libx264',
    '-preset', settings.preset,
    '-tune', 'zerolatency',
    '-profile:v', 'main',
    '-pix_fmt', 'yuv420p',
    '-b:v', `${kbps}k`,
    '-maxrate', `${kbps}k`,
    '-bufsize', `${kbps * 2}k`,
    '-sc_threshold', '0',
    ...gop,
  ];
}
