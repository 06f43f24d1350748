import type { LocalTarget } from '../ingest/engine.js';
import { libx264 } from '../pipeline/ffmpeg-args.js';
import type { Size } from './layout.js';

/** A mixer input's decoder: its frames as IVF on stdin, its picture at the slot's size, letterboxed, as raw 4:2:0 on stdout. */
export function decoderArgs(slot: Size): string[] {
  const { width, height } = slot;
  return [
    ...['-hide_banner', '-nostats', '-nostdin', '-loglevel', 'error', '-protocol_whitelist', 'pipe'],
    // One thread: frame threading would hold each frame back until the next ones came.
    ...['-threads', '1', '-probesize', '32', '-analyzeduration', '0', '-f', 'ivf', '-i', 'pipe:0'],
    '-vf',
    `scale=${width}:${height}:force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2,pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuv420p`,
    ...['-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'],
  ];
}

export interface EncoderJob {
  size: Size;
  frameRate: number;
  videoBitrateKbps: number;
  audioBitrateKbps: number;
  keyframeIntervalS: number;
  preset: string;
  /** Where each kind's RTP goes (the engine's local stream). */
  targets: readonly LocalTarget[];
}

/**
 * The mixer's encoder: the composed picture as raw 4:2:0 on `pipe:3` at the frame rate, the mixed
 * sound as PCM on stdin; H.264 (constrained baseline, a keyframe every interval) and Opus out as RTP
 * to the local stream's ports on loopback, nowhere else.
 */
export function encoderArgs(job: EncoderJob): string[] {
  const { width, height } = job.size;
  const gop = String(Math.max(1, Math.round(job.frameRate * job.keyframeIntervalS)));
  const args = [
    ...['-hide_banner', '-nostats', '-nostdin', '-loglevel', 'level+warning', '-protocol_whitelist', 'pipe,rtp,udp'],
    // Each input is read by a thread of its own, which queues what it read for the encoders.
    ...['-thread_queue_size', '64', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${width}x${height}`, '-framerate', String(job.frameRate), '-i', 'pipe:3'],
    ...['-thread_queue_size', '64', '-f', 's16le', '-ar', '48000', '-ch_layout', 'stereo', '-i', 'pipe:0'],
  ];
  for (const target of job.targets) {
    const url = `rtp://127.0.0.1:${target.port}?rtcpport=${target.rtcpPort}&pkt_size=1200`;
    if (target.kind === 'video') {
      args.push('-map', '0:v', ...libx264(job.videoBitrateKbps, { preset: job.preset }, 'baseline'), '-g', gop, '-keyint_min', gop, '-bf', '0');
    } else {
      args.push('-map', '1:a', '-c:a', 'libopus', '-b:a', `${job.audioBitrateKbps}k`, '-application', 'lowdelay', '-frame_duration', '20');
    }
    args.push('-payload_type', String(target.payloadType), '-ssrc', String(target.ssrc), '-f', 'rtp', url);
  }
  return args;
}
