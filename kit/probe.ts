import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface ProbedStream {
  index: number;
  codec_type: 'video' | 'audio';
  codec_name: string;
  width?: number;
  height?: number;
}

export interface ProbedPacket {
  stream_index: number;
  pts_time: string;
  dts_time: string;
  flags: string;
  size: string;
}

export interface Recording {
  streams: ProbedStream[];
  video: ProbedPacket[];
  audio: ProbedPacket[];
}

/** What ffprobe sees in a recording: streams and every packet's timing and flags. */
export async function probe(file: string): Promise<Recording> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-show_streams',
      '-show_packets',
      '-show_entries',
      'stream=index,codec_type,codec_name,width,height:packet=stream_index,pts_time,dts_time,flags,size',
      '-of',
      'json',
      file,
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const json = JSON.parse(stdout) as { streams: ProbedStream[]; packets: ProbedPacket[] };
  const video = json.streams.find((s) => s.codec_type === 'video');
  const audio = json.streams.find((s) => s.codec_type === 'audio');
  return {
    streams: json.streams,
    video: json.packets.filter((p) => p.stream_index === video?.index),
    audio: json.packets.filter((p) => p.stream_index === audio?.index),
  };
}

/** Largest gap between consecutive keyframes, in seconds (to the millisecond, as FLV counts). */
export function maxKeyframeGap(video: ProbedPacket[]): number {
  const keys = video.filter((p) => p.flags.startsWith('K')).map((p) => Math.round(Number(p.pts_time) * 1000));
  let max = 0;
  for (let i = 1; i < keys.length; i++) max = Math.max(max, keys[i]! - keys[i - 1]!);
  return max / 1000;
}

export function keyframeCount(video: ProbedPacket[]): number {
  return video.filter((p) => p.flags.startsWith('K')).length;
}

/** Places where decode timestamps fail to increase, as "previous -> this" pairs (empty when monotonic). */
export function nonMonotonic(packets: ProbedPacket[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < packets.length; i++) {
    if (Number(packets[i]!.dts_time) <= Number(packets[i - 1]!.dts_time))
      out.push(`#${i}: ${packets[i - 1]!.dts_time} -> ${packets[i]!.dts_time}`);
  }
  return out;
}

/** Bitrate of a stream's packets over their time span, kbps. */
export function bitrateKbps(packets: ProbedPacket[]): number {
  if (packets.length < 2) return 0;
  const bytes = packets.slice(0, -1).reduce((sum, p) => sum + Number(p.size), 0);
  return (bytes * 8) / (Number(packets.at(-1)!.pts_time) - Number(packets[0]!.pts_time)) / 1000;
}

/** AAC frames of silence are a few bytes; frames carrying sound are larger than this. */
const SILENT_AAC_FRAME_BYTES = 32;

/**
 * The AAC encoder's rate where it codes sound (kb/s at 48 kHz, 1024 samples a frame): a publisher
 * whose audio stalled (a loaded machine) is given silence, which would pull the whole recording's
 * rate down.
 */
export function soundBitrateKbps(audio: ProbedPacket[]): number {
  const sounding = audio.map((p) => Number(p.size)).filter((size) => size > SILENT_AAC_FRAME_BYTES);
  if (sounding.length === 0) return 0;
  const meanBytes = sounding.reduce((sum, size) => sum + size, 0) / sounding.length;
  return (meanBytes * 8 * (48000 / 1024)) / 1000;
}

/** Frames per second over the recording, from the first to the last video packet. */
export function recordedFps(video: ProbedPacket[]): number {
  if (video.length < 2) return 0;
  const span = Number(video.at(-1)!.pts_time) - Number(video[0]!.pts_time);
  return (video.length - 1) / span;
}
