import { ffmpegQuietly } from '../ffmpeg/ffmpeg-process.js';
import { overlayGraph, overlayInputs, type Overlay } from '../pipeline/overlays.js';
import type { LocalTarget } from '../ingest/engine.js';
import { libx264 } from '../pipeline/ffmpeg-args.js';
import type { Size } from './layout.js';

/** The font labels are written in (Debian's fonts-dejavu-core). */
const LABEL_FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

/**
 * A mixer input's decoder: its frames as IVF on stdin, its picture at the slot's size, letterboxed,
 * as raw 4:2:0 on stdout; the text of `labelFile` written at its bottom left, read again each
 * frame, so a new label needs no new decoder (an empty file: none). Scaled bilinearly: 720p into
 * a 640x360 slot costs a third less than with the default (bicubic).
 */
export function decoderArgs(slot: Size, labelFile: string): string[] {
  // A path goes into the filter graph as it is: one with characters the graph gives a meaning to would break it.
  if (!/^[\w/.-]+$/.test(labelFile))
    throw new Error(`a label file's path has characters a filter graph takes for its own: ${labelFile}`);
  const { width, height } = slot;
  const fontSize = Math.max(10, Math.round(height / 14));
  const label = [
    `drawtext=fontfile=${LABEL_FONT}:textfile=${labelFile}:reload=1:expansion=none`,
    `fontsize=${fontSize}:fontcolor=white`,
    `box=1:boxcolor=black@0.55:boxborderw=${Math.round(fontSize / 3)}`,
    `x=${fontSize}:y=h-th-${fontSize}`,
  ].join(':');
  return [
    ...ffmpegQuietly('pipe'),
    // One thread: frame threading would hold each frame back until the next ones came.
    ...['-threads', '1', '-probesize', '32', '-analyzeduration', '0', '-f', 'ivf', '-i', 'pipe:0'],
    '-vf',
    [
      `scale=${width}:${height}:force_original_aspect_ratio=decrease:flags=bilinear`,
      'scale=trunc(iw/2)*2:trunc(ih/2)*2',
      `pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2:color=black`,
      'setsar=1',
      label,
      'format=yuv420p',
    ].join(','),
    ...['-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'],
  ];
}

export interface EncoderJob {
  /** false: sound alone (no picture on `pipe:3`). */
  hasVideo: boolean;
  size: Size;
  overlays: readonly Overlay[];
  frameRate: number;
  videoBitrateKbps: number;
  audioBitrateKbps: number;
  keyframeIntervalS: number;
  preset: string;
  /** How far the sound's timestamps are put after the pictures' (ms). */
  soundDelayMs: number;
  /** Where each kind's RTP goes (the engine's local stream). */
  targets: readonly LocalTarget[];
}

/**
 * A raw input, read by a thread of its own which queues what it read for the encoders. It says all
 * there is to know of itself: ffmpeg is told not to read ahead to learn it (which would hold the
 * first picture back by half a second).
 */
const RAW_INPUT = ['-probesize', '32', '-analyzeduration', '0', '-thread_queue_size', '64'];

/** The mixed sound, as the mixer writes it on the encoder's stdin: PCM, 48 kHz stereo. */
const SOUND_INPUT = [...RAW_INPUT, '-f', 's16le', '-ar', '48000', '-ch_layout', 'stereo', '-i', 'pipe:0'];

/** Opus for the local stream's sound: at the mixer's bitrate, 20 ms frames, made for low delay. */
const opus = (job: EncoderJob): string[] => [
  '-c:a',
  'libopus',
  '-b:a',
  `${job.audioBitrateKbps}k`,
  '-application',
  'lowdelay',
  '-frame_duration',
  '20',
];

/** Where a local stream's kind goes: RTP to its port on loopback, as its target says. */
const rtpOut = (target: LocalTarget): string[] => [
  ...['-payload_type', String(target.payloadType), '-ssrc', String(target.ssrc), '-f', 'rtp'],
  `rtp://127.0.0.1:${target.port}?rtcpport=${target.rtcpPort}&pkt_size=1200`,
];

const ENCODER_START = [
  '-hide_banner',
  '-nostats',
  '-nostdin',
  '-loglevel',
  'level+warning',
  '-protocol_whitelist',
  'pipe,rtp,udp,file',
];

/**
 * The mixer's encoder: the composed picture as raw 4:2:0 on `pipe:3` at the frame rate, the mixed
 * sound as PCM on stdin; H.264 (constrained baseline, a keyframe every interval) and Opus out as RTP
 * to the local stream's ports on loopback, nowhere else. A mixer of sound alone: Opus alone.
 */
export function encoderArgs(job: EncoderJob): string[] {
  if (!job.hasVideo)
    return [
      ...ENCODER_START,
      ...SOUND_INPUT,
      ...job.targets.flatMap((target) => ['-map', '0:a', ...opus(job), ...rtpOut(target)]),
    ];
  const { width, height } = job.size;
  const gop = String(Math.max(1, Math.round(job.frameRate * job.keyframeIntervalS)));
  const args = [
    ...ENCODER_START,
    ...RAW_INPUT,
    ...['-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${width}x${height}`, '-framerate', String(job.frameRate)],
    ...['-i', 'pipe:3'],
    // The sound is written behind the pictures (`soundDelayMs`): its timestamps are put that much
    // later, for ffmpeg, which takes its inputs in timestamp order, not to hold each picture back
    // until the sound of its moment came.
    ...['-itsoffset', String(job.soundDelayMs / 1000)],
    ...SOUND_INPUT,
  ];
  // Overlays: each image an input of its own, laid over the picture (`overlayGraph`).
  const overlays = job.overlays.length > 0;
  if (overlays)
    args.push(
      ...overlayInputs(job.overlays),
      '-filter_complex',
      overlayGraph('0:v', job.overlays, 2, 'vout').join(';'),
    );
  for (const target of job.targets) {
    if (target.kind === 'video') {
      args.push(
        '-map',
        overlays ? '[vout]' : '0:v',
        ...libx264(job.videoBitrateKbps, { preset: job.preset }, 'baseline'),
        '-g',
        gop,
        '-keyint_min',
        gop,
        '-bf',
        '0',
      );
    } else {
      args.push('-map', '1:a', ...opus(job));
    }
    args.push(...rtpOut(target));
  }
  return args;
}
