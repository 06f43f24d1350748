import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { loadFixture } from '../../kit/fixture.js';
import type { FfmpegProcess } from '../../src/ffmpeg/ffmpeg-process.js';
import {
  MATROSKA_AUDIO_TRACK,
  MATROSKA_VIDEO_TRACK,
  matroskaBlockHead,
  matroskaHeader,
} from '../../src/media/matroska.js';
import { planEncoding } from '../../src/pipeline/encoding.js';
import { ffmpegPipelines } from '../../src/pipeline/ffmpeg-pipeline.js';
import type { AudioPacket, VideoFrame } from '../../src/media/sinks.js';

const fixture = loadFixture(join(import.meta.dirname, '..', '..', '.bench', 'fixture'));
const START_CODE = Buffer.from([0, 0, 0, 1]);
const annexB = (unit: { nals: Buffer[] }): Buffer => Buffer.concat(unit.nals.flatMap((nal) => [START_CODE, nal]));
const PCM_20MS = 960 * 2 * 2;

/** What ffprobe reads of a Matroska stream: its tracks, and each packet's track, time and flags. */
function probe(stream: Buffer): { streams: string[]; packets: { track: number; pts: number; key: boolean }[] } {
  const run = (entries: string): string[] => {
    const result = spawnSync(
      'ffprobe',
      ['-v', 'error', '-f', 'matroska', '-i', 'pipe:0', '-show_entries', entries, '-of', 'csv=p=0'],
      { input: stream },
    );
    if (result.status !== 0) throw new Error(`ffprobe: ${result.stderr.toString()}`);
    return result.stdout.toString().trim().split('\n');
  };
  const packets = run('packet=stream_index,pts_time,flags').map((line) => {
    const [track, pts, flags] = line.split(',');
    return { track: Number(track), pts: Number(pts), key: flags!.startsWith('K') };
  });
  const streams = run('stream=codec_name,width,height,sample_rate,channels').map((line) => line.replace(/,+$/, ''));
  return { streams: streams.filter((line) => line !== ''), packets };
}

t.test('the live Matroska stream reads as the H.264 and the PCM written, each block at its time', async (t) => {
  const parts = [matroskaHeader('H264', { sampleRate: 48000, channels: 2 })];
  const block = (track: number, us: number, data: Buffer, key: boolean): Buffer[] => [
    matroskaBlockHead(track, us, data.length, key),
    data,
  ];
  // Video from 0, audio from 0.5 s on, blocks in the order they would come.
  let audio = 25;
  for (let i = 0; i < 45; i++) {
    const us = Math.round((i * 1_000_000) / fixture.fps);
    for (; audio * 20_000 <= us; audio++)
      parts.push(...block(MATROSKA_AUDIO_TRACK, audio * 20_000, Buffer.alloc(PCM_20MS), true));
    parts.push(...block(MATROSKA_VIDEO_TRACK, us, annexB(fixture.video[i]!), fixture.video[i]!.key));
  }
  const read = probe(Buffer.concat(parts));
  t.same(read.streams, ['h264,1280,720', 'pcm_s16le,48000,2']);
  const video = read.packets.filter((p) => p.track === 0);
  const sound = read.packets.filter((p) => p.track === 1);
  t.equal(video.length, 45);
  t.same(
    video.slice(0, 3).map((p) => p.pts),
    [0, 0.033333, 0.066667],
  );
  t.ok(video[0]!.key && !video[1]!.key, 'the keyframe flag');
  t.equal(sound[0]!.pts, 0.5, 'the audio from its own time');
  t.equal(sound[1]!.pts, 0.52);
});

t.test(
  'a transcoding pipeline gives ffmpeg one input: the video from a keyframe on, and the PCM timed by what was written',
  async (t) => {
    const written: Buffer[] = [];
    const ffmpeg = Object.assign(new EventEmitter(), {
      pid: 1,
      started: Promise.resolve(1),
      inputBacklog: 0,
      videoBacklog: 0,
      write: (): boolean => t.fail('nothing goes to stdin') as unknown as boolean,
      writeVideo: (data: Buffer): boolean => (written.push(data), true),
      stop: async (): Promise<void> => {},
    });
    const settings = {
      keepAspectRatio: true,
      transcodingEnabled: true,
      videoBitrateKbps: 1000,
      preset: 'superfast',
      audioBitrateKbps: 128,
      aacCoder: 'fast' as const,
      audioSampleRate: 48000,
      keyframeIntervalS: 2,
    };
    const pipelines = ffmpegPipelines({
      encoding: settings,
      analyzeDurationUs: 0,
      startTimeoutMs: 60_000,
      stopTimeoutMs: 1000,
      spawn: () => ffmpeg as unknown as FfmpegProcess,
      log: pino({ level: 'silent' }),
    });
    const pipe = await pipelines({
      plan: planEncoding('H264', { height: 360 }, settings),
      video: 'H264',
      muted: false,
      sound: undefined,
    });
    t.teardown(() => pipe.close());
    const samples = new Int16Array(960 * 2).fill(1000);
    const source = { audioPcm: () => samples };
    const start = 10_000;
    pipe.begin(start);
    const frame = (i: number): VideoFrame =>
      ({
        key: fixture.video[i]!.key,
        captureMs: start + 200 + (i * 1000) / fixture.fps,
        bitstream: () => annexB(fixture.video[i]!),
      }) as VideoFrame;
    // A frame that is not a keyframe, then from the keyframe on; 20 ms of sound at a time.
    pipe.writeVideo(frame(1));
    for (let i = 0; i < 10; i++)
      pipe.writeAudio({ payload: Buffer.alloc(0), captureMs: start + i * 20 } as AudioPacket, source);
    for (let i = 0; i < 3; i++) pipe.writeVideo(frame(i === 0 ? 0 : i));
    // Far behind on its one input: the audio that comes now is discarded, and its time not written.
    ffmpeg.videoBacklog = 4 * 1024 * 1024;
    for (let i = 10; i < 15; i++)
      pipe.writeAudio({ payload: Buffer.alloc(0), captureMs: start + i * 20 } as AudioPacket, source);
    ffmpeg.videoBacklog = 0;
    for (let i = 15; i < 17; i++)
      pipe.writeAudio({ payload: Buffer.alloc(0), captureMs: start + i * 20 } as AudioPacket, source);
    const read = probe(Buffer.concat(written));
    const video = read.packets.filter((p) => p.track === 0);
    const sound = read.packets.filter((p) => p.track === 1);
    t.same(
      video.map((p) => p.pts),
      [0, 0.033333, 0.066667],
      'from the keyframe on, its time 0 the keyframe',
    );
    t.ok(video[0]!.key);
    t.ok(sound.length >= 11, `the sound before and after (${sound.length} blocks)`);
    t.same(
      sound.map((p) => p.pts),
      sound.map((_, i) => Number((i * 0.02).toFixed(6))),
      'the PCM back to back, in the time of the samples written (the discarded left no gap)',
    );
    t.ok(pipe.audioDiscardedMs > 0, 'the discarded audio counted');
  },
);
