import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AudioMixer, PCM_SAMPLE_RATE, type MixSource } from '../audio/mixer.js';
import { buildFfmpegArgs, buildInputSdp } from '../ffmpeg/ffmpeg-args.js';
import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { reservePorts, udpPortBound } from '../ffmpeg/udp-ports.js';
import type { VideoCodec } from '../media/codecs.js';
import { annexBKeyframe, FlvReader, type FlvTag } from '../media/flv.js';
import type { EncodingPlan, EncodingSettings } from './encoding.js';
import type { Picture, TagSource } from './output.js';

/** What a pipeline is made for. */
export interface PipelineSpec {
  plan: EncodingPlan;
  /** The publisher's video, when ffmpeg transcodes it. */
  video?: { codec: VideoCodec; spropParameterSets?: string };
  /** The picture shown while the publisher is away, at this frame rate. */
  still?: { picture: Picture; fps: number };
  muted: boolean;
  sound: MixSource | undefined;
}

/** The local half of an output, replaced as a whole: what makes its audio (and transcoded video). */
export interface Pipeline {
  /** Resolves at the first output; rejects if the pipeline ends first. */
  readonly output: Promise<void>;
  /** Where its tags go on the timeline (`shiftMs` is set by a hand-over). */
  readonly source: TagSource;
  /** Starts the audio timeline (and the still picture's) at this publisher-clock time, if not started. */
  begin(wallclockMs: number): void;
  writeAudio(payload: Buffer, wallclockMs: number): void;
  /** A video packet as RTP, for a pipeline that transcodes; `rtp` makes it. */
  writeVideo(keyframe: boolean, wallclockMs: number, rtp: () => Buffer): void;
  setMuted(muted: boolean): void;
  setSound(sound: MixSource | undefined): void;
  /** Tags it writes, and its end (with why) once: each listener set once. */
  onTags(listener: (tags: FlvTag[]) => void): void;
  onLost(listener: (reason: string) => void): void;
  close(): Promise<void>;
}

export type PipelineFactory = (spec: PipelineSpec) => Promise<Pipeline>;

export interface FfmpegPipelineSettings {
  encoding: EncodingSettings;
  analyzeDurationUs: number;
  rtpPortRange: [number, number];
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** Starts ffmpeg with these arguments. */
  spawn: (args: string[]) => FfmpegProcess;
  log: Logger;
}

const PORT_POLL_MS = 10;
const KEPT_LOG_LINES = 20;
/** PCM ffmpeg has not read beyond this (~5 s) means it no longer keeps up. */
const MAX_PCM_BACKLOG_BYTES = 5 * PCM_SAMPLE_RATE * 4;
/** An ffmpeg that has written nothing for this long (it writes AAC every ~21 ms) is replaced. */
const FFMPEG_STALL_MS = 5000;
const WATCH_MS = 500;

/** Pipelines of ffmpeg: `spec` says what each makes. */
export function ffmpegPipelines(settings: FfmpegPipelineSettings): PipelineFactory {
  return (spec) => FfmpegPipeline.start(spec, settings);
}

/**
 * ffmpeg with what feeds it: the audio mixer (the publisher's Opus decoded, muted or not, a sound
 * file over it) writing PCM to its stdin; for transcoding, the publisher's RTP over loopback UDP
 * described by an SDP file; for the still picture, the last keyframe as a file it loops. Its FLV
 * tags come back on stdout. Its audio time 0 is the mixer's first sample, its video time 0 the
 * first packet given to it. Lost when ffmpeg exits, stops writing, writes what cannot be read,
 * or no longer reads its audio.
 */
class FfmpegPipeline implements Pipeline {
  output: Promise<void> = Promise.resolve();
  readonly source: TagSource;
  readonly #flv = new FlvReader();
  readonly #lines: string[] = [];
  #socket: Socket | undefined;
  #lastOutputAt: number | undefined;
  readonly #watch: NodeJS.Timeout;
  #tags: ((tags: FlvTag[]) => void) | undefined;
  #lost: ((reason: string) => void) | undefined;
  #closing: Promise<void> | undefined;

  private constructor(
    private readonly ffmpeg: FfmpegProcess,
    private readonly mixer: AudioMixer,
    private readonly settings: FfmpegPipelineSettings,
    private readonly videoPort: number | undefined,
    private readonly workDir: string | undefined,
    spec: PipelineSpec,
  ) {
    this.source = { shiftMs: 0, still: spec.still !== undefined, transcoding: spec.video !== undefined };
    this.output = new Promise<void>((resolve, reject) => {
      ffmpeg.once('output', () => resolve());
      ffmpeg.once('exit', (code, signal) => reject(new Error(this.#exitReason(code, signal))));
    });
    this.output.catch(() => {}); // also reported through onLost
    ffmpeg.on('line', (line) => this.#onLine(line));
    ffmpeg.on('output', (data) => this.#onOutput(data));
    ffmpeg.on('exit', (code, signal) => this.#lose(this.#exitReason(code, signal)));
    // Before its first output, ffmpeg has the start-up timeout; after it, it writes every ~21 ms.
    const startedAt = Date.now();
    this.#watch = setInterval(() => {
      const now = Date.now();
      if (this.#lastOutputAt === undefined) {
        if (now - startedAt >= settings.startTimeoutMs) this.#lose(`ffmpeg wrote no output within ${settings.startTimeoutMs} ms`);
        return;
      }
      const silentMs = now - this.#lastOutputAt;
      if (silentMs >= FFMPEG_STALL_MS) this.#lose(`ffmpeg made no progress for ${Math.round(silentMs / 1000)} s`);
    }, WATCH_MS);
  }

  static async start(spec: PipelineSpec, settings: FfmpegPipelineSettings): Promise<FfmpegPipeline> {
    let writePcm: (pcm: Buffer) => void = () => {};
    const mixer = await AudioMixer.create({ write: (pcm) => writePcm(pcm) });
    mixer.muted = spec.muted;
    mixer.source = spec.sound;
    let videoSdpPath: string | undefined;
    let videoPort: number | undefined;
    let workDir: string | undefined;
    let still: { path: string; fps: number } | undefined;
    try {
      if (spec.still) {
        workDir = await mkdtemp(join(tmpdir(), 'transponder-'));
        still = { path: join(workDir, 'still.h264'), fps: spec.still.fps };
        await writeFile(still.path, annexBKeyframe(spec.still.picture.header, spec.still.picture.frame), { mode: 0o600 });
      } else if (spec.video) {
        videoPort = await reservePorts(settings.rtpPortRange, 2);
        workDir = await mkdtemp(join(tmpdir(), 'transponder-'));
        videoSdpPath = join(workDir, 'input.sdp');
        await writeFile(videoSdpPath, buildInputSdp({ codec: spec.video.codec, port: videoPort, spropParameterSets: spec.video.spropParameterSets }), { mode: 0o600 });
      }
    } catch (error) {
      mixer.close();
      if (workDir) await rm(workDir, { recursive: true, force: true });
      throw error;
    }
    const args = buildFfmpegArgs({ videoSdpPath, still, plan: spec.plan, settings: settings.encoding, analyzeDurationUs: settings.analyzeDurationUs });
    const ffmpeg = settings.spawn(args);
    const pipeline = new FfmpegPipeline(ffmpeg, mixer, settings, videoPort, workDir, spec);
    writePcm = (pcm) => pipeline.#writePcm(pcm);
    settings.log.info({ pid: ffmpeg.pid, plan: still ? 'still' : spec.plan.video }, 'ffmpeg started');
    if (videoPort !== undefined) {
      try {
        await pipeline.#awaitPortBound(videoPort);
      } catch (error) {
        await pipeline.close();
        throw error;
      }
      pipeline.#socket = createSocket('udp4');
      pipeline.#socket.on('error', (error) => settings.log.warn({ err: error }, 'RTP socket error'));
    }
    return pipeline;
  }

  begin(wallclockMs: number): void {
    this.mixer.begin(wallclockMs);
    this.source.audioStartMs = this.mixer.startMs;
    if (this.source.still) this.source.videoStartMs ??= this.mixer.startMs;
  }

  writeAudio(payload: Buffer, wallclockMs: number): void {
    this.mixer.push(payload, wallclockMs);
  }

  writeVideo(keyframe: boolean, wallclockMs: number, rtp: () => Buffer): void {
    if (!this.#socket || this.videoPort === undefined) return;
    // ffmpeg is given video from a keyframe on, which it can decode.
    if (this.source.videoStartMs === undefined && !keyframe) return;
    this.source.videoStartMs ??= wallclockMs;
    this.#socket.send(rtp(), this.videoPort, '127.0.0.1');
  }

  setMuted(muted: boolean): void {
    this.mixer.muted = muted;
  }

  setSound(sound: MixSource | undefined): void {
    this.mixer.source = sound;
  }

  onTags(listener: (tags: FlvTag[]) => void): void {
    this.#tags = listener;
  }

  onLost(listener: (reason: string) => void): void {
    this.#lost = listener;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#lost = undefined;
      this.#tags = undefined;
      clearInterval(this.#watch);
      this.mixer.close();
      await this.ffmpeg.stop(this.settings.stopTimeoutMs);
      this.#socket?.close();
      if (this.workDir) await rm(this.workDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  #writePcm(pcm: Buffer): void {
    if (!this.ffmpeg.write(pcm)) return;
    if (this.ffmpeg.inputBacklog > MAX_PCM_BACKLOG_BYTES) this.#lose('ffmpeg does not keep up with the audio');
  }

  #onOutput(data: Buffer): void {
    this.#lastOutputAt = Date.now();
    let tags: FlvTag[];
    try {
      tags = this.#flv.push(data);
    } catch (error) {
      this.#lose(`ffmpeg wrote unreadable output: ${(error as Error).message}`);
      return;
    }
    this.#tags?.(tags);
  }

  #lose(reason: string): void {
    const listener = this.#lost;
    this.#lost = undefined;
    clearInterval(this.#watch);
    listener?.(reason);
  }

  /** Forwarding starts only once ffmpeg listens: a packet sent earlier would be lost. */
  async #awaitPortBound(port: number): Promise<void> {
    const deadline = Date.now() + this.settings.startTimeoutMs;
    while (!(await udpPortBound(port))) {
      if (this.#closing) return;
      if (this.ffmpeg.exitCode !== undefined) throw new Error(this.#exitReason(this.ffmpeg.exitCode, null));
      if (Date.now() > deadline) throw new Error('ffmpeg did not open its RTP input in time');
      await new Promise((r) => setTimeout(r, PORT_POLL_MS));
    }
  }

  #onLine(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > KEPT_LOG_LINES) this.#lines.shift();
    this.settings.log.debug({ ffmpeg: line });
  }

  #exitReason(code: number | null, signal: NodeJS.Signals | null): string {
    const lines = this.#lines;
    const errors = lines.filter((l) => /\[(error|fatal)\]/.test(l)).map((l) => l.replace(/^.*\[(error|fatal)\]\s*/, ''));
    if (errors.length) return `ffmpeg exited (${signal ?? `code ${code}`}): ${errors.slice(-3).join('; ')}`;
    if (signal) return `ffmpeg was ended by ${signal}`;
    return `ffmpeg exited (code ${code})${lines.length ? `: ${lines.at(-1)!.trim()}` : ''}`;
  }
}
