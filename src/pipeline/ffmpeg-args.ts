import { PCM_CHANNELS, PCM_SAMPLE_RATE } from '../audio/pcm.js';
import { TIMELINE_LIMITS } from '../media/clock-mapping.js';
import type { EncodingPlan, EncodingSettings } from './encoding.js';
import { overlayGraph, overlayInputs } from './overlays.js';
import { shapeGraph } from './shape.js';

export interface FfmpegJob {
  /** The video to transcode comes on `pipe:3`, with the PCM, as Matroska; false when the gateway passes it through. */
  videoInput?: boolean;
  plan: EncodingPlan;
  settings: EncodingSettings;
  /** How long ffmpeg probes the video input before it starts writing, in microseconds. */
  analyzeDurationUs: number;
  /**
   * While the publisher is away: an H.264 Annex B file of the last keyframe sent, shown as a still
   * picture at `fps`, in real time, instead of any video input.
   */
  still?: { path: string; fps: number };
  /** The audio comes as the publisher's Opus in Ogg on stdin (`OpusTimeline`), not as PCM. */
  opus?: boolean;
}

/**
 * ffmpeg's argument array. In: the gateway's mixed audio as raw PCM (or the publisher's Opus) on
 * stdin; or, when it transcodes, the video and that PCM together as Matroska on `pipe:3` (whole
 * frames the gateway depacketized, timed on the publisher's clock). Out: FLV tags on stdout (the
 * audio on `pipe:4` when it transcodes video), which the gateway forwards to the destination itself. ffmpeg
 * never sees the destination, so no URL or stream key is in its arguments, and it can reach no
 * network: inputs are limited to files (the still picture) and pipes.
 */
export function buildFfmpegArgs(job: FfmpegJob): string[] {
  const { plan, settings } = job;
  const args = ['-hide_banner', '-nostats', '-nostdin', '-loglevel', 'level+info', '-protocol_whitelist', 'file,pipe'];
  // Filters (scaling, the shape's crop, overlays) in the thread that decodes and encodes: their
  // slice threads, one per core by default, cost more CPU in all than the work they share. The
  // 720x1280 crop of the benchmark's 720p30, in real time: 2.84 against 2.94 CPU s for 10 s.
  if (job.still || job.videoInput) args.push('-filter_threads', '1', '-filter_complex_threads', '1');
  if (job.still) args.push('-f', 'h264', '-i', job.still.path);
  // The video and the PCM together, as Matroska on pipe:3: one input, read with a blocking read.
  // With two inputs ffmpeg reads each in a thread and its main loop, finding neither ready, sleeps
  // 10 ms and looks again (66 times a second for a push; 1 % of a core, DESIGN.md).
  else if (job.videoInput) args.push('-analyzeduration', String(job.analyzeDurationUs), ...MATROSKA_PIPE_3);
  // The audio's format is given, so nothing is probed: by default ffmpeg would read ~1 s of it
  // first, and it is written in real time. Ogg Opus says all ffmpeg needs in its header pages.
  // libopus decodes it: with ffmpeg 5.1's own decoder the AAC encoder after it took 2.7 times the
  // CPU (1.90 s against 0.71 s for 60 s of the fixture's audio, decoding and encoding).
  if (job.opus) args.push('-probesize', '32', '-analyzeduration', '0', '-c:a', 'libopus', '-f', 'ogg', '-i', 'pipe:0');
  else if (!job.videoInput) args.push('-probesize', '32', ...PCM_STDIN);
  const audioInput = job.still ? 1 : 0;
  const flv = ['-f', 'flv', '-flvflags', 'no_duration_filesize', '-flush_packets', '1'];
  // Images over the picture: inputs after the video's and the audio's, laid over in one filter graph.
  const overlays = plan.video === 'transcode' && (job.still || job.videoInput) ? (plan.overlays ?? []) : [];
  if (overlays.length) args.push(...overlayInputs(overlays));
  // The picture's shape (9:16) after the filters, then the images: one filter graph when there is either.
  const shape = plan.video === 'transcode' && job.videoInput && !job.still ? plan.shape : undefined;
  const video: VideoFilters = (filters) => {
    if (!overlays.length && !shape) return ['-map', '0:v:0', ...(filters.length ? ['-vf', filters.join(',')] : [])];
    const graph = filters.length ? [`[0:v]${filters.join(',')}[base]`] : [];
    let last = filters.length ? 'base' : '0:v';
    if (shape) {
      last = overlays.length ? 'shaped' : 'vout';
      graph.push(...shapeGraph(shape, filters.length ? 'base' : '0:v', last));
    }
    if (overlays.length) graph.push(...overlayGraph(last, overlays, job.still ? 2 : 1, 'vout'));
    return ['-filter_complex', graph.join(';'), '-map', '[vout]'];
  };
  if (job.still) args.push(...stillArgs(job.still.fps, plan, settings, video));
  // Transcoded video is an output of its own (pipe:1), the audio another (pipe:4): in one FLV
  // output, the muxer would hold each video frame until audio as late had come through the AAC
  // encoder (its delay is two frames, ~43 ms). The gateway places both tracks on one timeline.
  else if (job.videoInput && plan.video === 'transcode')
    args.push(...x264Args(plan, settings, video), ...flv, 'pipe:1');
  args.push('-map', `${audioInput}:a:0`);
  if (job.opus) args.push('-af', OPUS_TIMING);
  args.push(
    '-c:a',
    'aac',
    '-aac_coder',
    settings.aacCoder,
    '-b:a',
    `${plan.audioBitrateKbps ?? settings.audioBitrateKbps}k`,
    '-ar',
    String(settings.audioSampleRate),
    '-ac',
    '2',
  );
  args.push(...flv, job.videoInput ? 'pipe:4' : 'pipe:1');
  return args;
}

/**
 * A transcoding ffmpeg's one input, its decoders in one thread: frame threading (one thread per
 * core, plus one) holds each frame back until the next ones arrive, two frames (66 ms at 30 fps) on
 * two cores.
 */
const MATROSKA_PIPE_3 = ['-threads', '1', '-f', 'matroska', '-i', 'pipe:3'];
/**
 * The timing of the Opus passed as it is: each Ogg page's granule says where its packet really is on the gateway's
 * clock (`OpusTimeline`), and a drifting sender's packets overlap or part by a fraction of a
 * millisecond. The resampler stretches or squeezes the sound to those times, by at most what the
 * clock mapping follows (`TIMELINE_LIMITS.maxSkew`, 1 %: 480 samples a second), inaudibly. An ideal
 * sender costs nothing more: 1.50 CPU s for 120 s of Opus to AAC with it and without (ffmpeg 5.1.9).
 */
export const OPUS_TIMING = `aresample=async=${Math.round(TIMELINE_LIMITS.maxSkew * PCM_SAMPLE_RATE)}`;
const PCM_STDIN = ['-f', 's16le', '-ar', String(PCM_SAMPLE_RATE), '-ac', String(PCM_CHANNELS), '-i', 'pipe:0'];

/**
 * Keyframes never further apart than `intervalS`. A keyframe is forced once the frame *after* this
 * one could land past the interval: the time since the last forced keyframe plus 1.5 average frame
 * durations (at most 0.25 s) reaches it. Forcing at multiples of the interval instead
 * (`gte(t,n_forced*I)`) lets a gap reach the interval plus one frame (2.04 s at 25 fps), which
 * destinations asking for "at most 2 s" count against the stream.
 */
export function keyframeExpression(intervalS: number): string {
  return `expr:gte(t-if(isnan(prev_forced_t),0,prev_forced_t)+min(1.5*t/max(n,1),0.25),${intervalS})`;
}

/** The video's mapping and its filters: `-vf`, or a filter graph with the overlays. */
type VideoFilters = (filters: string[]) => string[];

function x264Args(
  plan: Extract<EncodingPlan, { video: 'transcode' }>,
  settings: EncodingSettings,
  video: VideoFilters,
): string[] {
  const filters: string[] = [];
  if (plan.scale) filters.push(`scale=${plan.scale.width}:${plan.scale.height}`);
  if (plan.fps) filters.push(`fps=${plan.fps}`);
  const gop = plan.keyFrameInterval
    ? ['-g', String(plan.keyFrameInterval), '-keyint_min', String(plan.keyFrameInterval)]
    : ['-force_key_frames', keyframeExpression(settings.keyframeIntervalS)];
  return [...video(filters), ...libx264(plan.videoBitrateKbps ?? settings.videoBitrateKbps, settings), ...gop];
}

/**
 * The still picture: its one frame repeated for ever (`loop`), numbered at `fps` and let out in
 * real time (`realtime`), encoded with a keyframe every keyframe interval. A still costs x264
 * almost nothing after the first frame.
 */
function stillArgs(fps: number, plan: EncodingPlan, settings: EncodingSettings, video: VideoFilters): string[] {
  const gop = String(Math.max(1, Math.round(fps * settings.keyframeIntervalS)));
  return [
    ...video([`loop=loop=-1:size=1:start=0,setpts=N/${fps}/TB,realtime`]),
    '-r',
    String(fps),
    ...libx264((plan.video === 'transcode' && plan.videoBitrateKbps) || settings.videoBitrateKbps, settings),
    // Constant quality under the bitrate cap: a picture that does not change costs next to nothing.
    '-crf',
    '28',
    '-g',
    gop,
    '-keyint_min',
    gop,
  ];
}

/**
 * Presets for which one x264 thread keeps up with 1080p30 in real time on one core of the
 * benchmark's machine (veryfast: 6.8 ms a 720p frame, about 15 ms a 1080p one; superfast, the
 * default, a quarter less). With zerolatency,
 * x264's own threading is sliced threads, which cost more CPU in all (24.7 against 28.3 % of a core
 * for ffmpeg transcoding 720p30, for the same added latency: 40 ms median, 56 ms p95).
 */
const ONE_THREAD_PRESETS = new Set(['ultrafast', 'superfast', 'veryfast']);

export function libx264(
  kbps: number,
  settings: Pick<EncodingSettings, 'preset'>,
  profile: 'main' | 'baseline' = 'main',
): string[] {
  return [
    '-c:v',
    'libx264',
    ...(ONE_THREAD_PRESETS.has(settings.preset) ? ['-threads', '1'] : []),
    '-preset',
    settings.preset,
    '-tune',
    'zerolatency',
    '-profile:v',
    profile,
    '-pix_fmt',
    'yuv420p',
    '-b:v',
    `${kbps}k`,
    '-maxrate',
    `${kbps}k`,
    '-bufsize',
    `${kbps * 2}k`,
    '-sc_threshold',
    '0',
  ];
}
