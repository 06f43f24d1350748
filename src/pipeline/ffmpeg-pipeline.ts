import { monotonicMs } from '../core/clock.js';
import { checkEvery } from '../core/tick.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PcmTimeline, type SoundSource } from '../audio/pcm-timeline.js';
import { OpusTimeline } from '../audio/opus-timeline.js';
import { AudioBacklog } from './audio-backlog.js';
import { buildFfmpegArgs } from './ffmpeg-args.js';
import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { annexBKeyframe, FlvReader, FlvTagType, isVideoFrameTag, type FlvTag } from '../media/flv.js';
import {
  MATROSKA_AUDIO_TRACK,
  MATROSKA_CLOCK_RATE,
  MATROSKA_VIDEO_TRACK,
  matroskaBlockHead,
  matroskaHeader,
} from '../media/matroska.js';
import { PCM_CHANNELS, PCM_SAMPLE_RATE } from '../audio/pcm.js';
import type { EncodingSettings } from './encoding.js';
import { type FailureKind, OpenError } from '../links/failures.js';
import type { PcmSource, Pipeline, PipelineFactory, PipelineSpec, TagSource } from './pipeline.js';
import type { AudioPacket, VideoFrame } from '../media/sinks.js';

export interface FfmpegPipelineSettings {
  encoding: EncodingSettings;
  analyzeDurationUs: number;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** Starts ffmpeg with these arguments; with `videoInput`, its `pipe:3` is open for video. */
  spawn: (args: string[], videoInput: boolean) => FfmpegProcess;
  /** Whether the machine is out of CPU now (`LoadMonitor.saturated`). */
  saturated?: () => boolean;
  log: Logger;
}

const KEPT_LOG_LINES = 20;
/** On a saturated machine, an ffmpeg that has written nothing is given this long before it is replaced. */
const FFMPEG_STALL_SATURATED_MS = 30_000;
/** Silent for this long on a saturated machine, an ffmpeg counts as behind. */
const FFMPEG_BEHIND_SILENT_MS = 2000;
/** Video ffmpeg has not read beyond this (~10 s at 2.5 Mb/s) means it no longer keeps up. */
const MAX_VIDEO_BACKLOG_BYTES = 3 * 1024 * 1024;
/** An ffmpeg that has written nothing for this long (it writes AAC every ~21 ms) is replaced. */
const FFMPEG_STALL_MS = 5000;
const WATCH_MS = 500;
/**
 * Audio blocks written to ffmpeg at a time once it is up: the PCM timeline's blocks and the Opus timeline's pages
 * are each ~20 ms (an Opus packet), so ten make 200 ms. Each write wakes ffmpeg, and on two cores
 * the writer is often pre-empted until ffmpeg has encoded it: fewer, larger writes cost both less
 * (see DESIGN.md). The video does not wait for it: passed through, it does not go through ffmpeg;
 * transcoded, it comes in the same input (Matroska), which ffmpeg reads in the order written. (With
 * the audio an input of its own, ffmpeg's main loop took its next packet for the output furthest
 * behind, and the video waited for audio as late: 43 ms median added latency, 59 ms p95.)
 */
const BATCH_BLOCKS = 10;
/** A transcoding ffmpeg's PCM held until its first frame: 10 s of 20 ms blocks; what comes after is discarded. */
const MAX_HELD_PCM_BLOCKS = 500;
/** The gateway's PCM as a transcoding ffmpeg's Matroska input describes it; the bytes of one sample of its channels. */
const PCM_FORMAT = { sampleRate: PCM_SAMPLE_RATE, channels: PCM_CHANNELS };
const PCM_SAMPLE_BYTES = 2 * PCM_CHANNELS;
/** The still picture's video is put on the clock by this many of its first frames (`#stillOnClock`). */
const STILL_CLOCK_FRAMES = 3;
/** After an audio command, audio goes out block by block for this many (~200 ms): the change shows at once. */
const EAGER_BLOCKS = 10;

/** Pipelines of ffmpeg: `spec` says what each makes. */
export function ffmpegPipelines(settings: FfmpegPipelineSettings): PipelineFactory {
  return (spec) => FfmpegPipeline.start(spec, settings);
}

/**
 * ffmpeg with what feeds it: the publisher's Opus passed as it is (`OpusTimeline`, when nothing is
 * mixed), or the PCM timeline (the publisher's audio, decoded once by the publisher, muted or not, a
 * sound file over it) writing PCM to its stdin. For transcoding, the publisher's frames and that PCM
 * go together as Matroska on `pipe:3` (the frames depacketized once by the publisher, each stamped
 * with its publisher-clock time; the PCM by the samples written before it). For the still
 * picture, the last keyframe as a file it loops. Its FLV tags come back on stdout. Its audio time 0
 * is the audio timeline's first sample, its video time 0 the first frame given to it. Lost when ffmpeg
 * exits, stops writing, writes what cannot be read, or no longer reads its video (audio it cannot
 * take is discarded: `AudioBacklog`).
 */
class FfmpegPipeline implements Pipeline {
  output: Promise<void> = Promise.resolve();
  readonly source: TagSource;
  readonly #flv = new FlvReader();
  /** The audio's own output, when ffmpeg also transcodes the video (its `pipe:4`). */
  readonly #flvAudio = new FlvReader();
  readonly #lines: string[] = [];
  /** The Matroska time of the last frame written. */
  #lastPts = -1;
  /** When ffmpeg transcodes: PCM samples written into its Matroska input, which time the next block. */
  #samplesWritten = 0;
  /** Bytes of video written into it, beside the PCM's (`#samplesWritten`): how its backlog splits (`#behindAsPcm`). */
  #videoBytesWritten = 0;
  /** Its PCM blocks until the first frame is written (`#writePcmBlock`). */
  #heldPcm: Buffer[] = [];
  #lastOutputAt: number | undefined;
  /** Stops its watch. */
  readonly #unwatch: () => void;
  #tags: ((tags: FlvTag[]) => void) | undefined;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;
  #closing: Promise<void> | undefined;
  #failOutput: (error: OpenError) => void = () => {};
  #batch: Buffer[] = [];
  #batchBytes = 0;
  /** After a mute or a sound changed what the audio carries: blocks written at once, as the change fades in through the encoder. */
  #eagerBlocks = 0;
  /** The still picture's video time 0 is set by its first frames (`#stillOnClock`): how many came, and the earliest time 0 they tell. */
  #stillFrames = 0;
  #stillStartMs = Infinity;
  /** Its output until then, let out at once when it is set. */
  #stillHeld: FlvTag[] = [];
  /** Since when ffmpeg has written nothing on a saturated machine (`behindSince` tells the earlier of it and the backlog's). */
  #silentSince: number | undefined;
  /** Its audio input when ffmpeg falls behind. */
  readonly #backlog: AudioBacklog;

  private constructor(
    private readonly ffmpeg: FfmpegProcess,
    private readonly audio: PcmTimeline | OpusTimeline,
    private readonly settings: FfmpegPipelineSettings,
    private readonly workDir: string | undefined,
    private readonly spec: PipelineSpec,
  ) {
    this.source = { shiftMs: 0, still: spec.still !== undefined, transcoding: spec.video !== undefined };
    if (spec.video !== undefined) ffmpeg.writeVideo(matroskaHeader(spec.video, PCM_FORMAT));
    this.#backlog = new AudioBacklog(audio instanceof PcmTimeline, settings.log);
    this.output = new Promise<void>((resolve, reject) => {
      ffmpeg.once('output', () => resolve());
      this.#failOutput = reject;
      ffmpeg.once('exit', (code, signal) => reject(new OpenError(this.#exitReason(code, signal), 'local')));
    });
    this.output.catch(() => {}); // also reported through onLost
    ffmpeg.on('line', (line) => this.#onLine(line));
    ffmpeg.on('output', (data) => this.#onOutput(data, this.#flv));
    ffmpeg.on('audioOutput', (data) => this.#onOutput(data, this.#flvAudio));
    ffmpeg.on('exit', (code, signal) => this.#lose(this.#exitReason(code, signal)));
    // Before its first output, ffmpeg has the start-up timeout; after it, it writes every ~21 ms.
    // A late check judges nothing: the thread was starved, and what ffmpeg wrote may wait unread.
    const startedAt = monotonicMs();
    this.#unwatch = checkEvery(WATCH_MS, (now, onTime) => {
      if (!onTime) return;
      if (this.#lastOutputAt === undefined) {
        // Started but silent: the machine did not get to it in time.
        if (now - startedAt >= settings.startTimeoutMs)
          this.#lose(`ffmpeg wrote no output within ${settings.startTimeoutMs} ms`, 'slow');
        return;
      }
      const silentMs = now - this.#lastOutputAt;
      // On a saturated machine a silent ffmpeg is starved, not stuck: it is behind, and replaced
      // only if it stays silent much longer (the push may be ended first, newest first).
      const saturated = settings.saturated?.() ?? false;
      if (saturated && silentMs >= FFMPEG_BEHIND_SILENT_MS) this.#silentSince ??= this.#lastOutputAt;
      if (silentMs >= (saturated ? FFMPEG_STALL_SATURATED_MS : FFMPEG_STALL_MS))
        this.#lose(`ffmpeg made no progress for ${Math.round(silentMs / 1000)} s`);
    });
  }

  static async start(spec: PipelineSpec, settings: FfmpegPipelineSettings): Promise<FfmpegPipeline> {
    let writeAudio: (block: Buffer) => void = () => {};
    const opus = spec.opus === true && spec.sound === undefined && spec.still === undefined;
    const timeline = opus
      ? new OpusTimeline({ write: (pages) => writeAudio(pages) })
      : new PcmTimeline({ write: (pcm) => writeAudio(pcm) });
    timeline.muted = spec.muted;
    if (timeline instanceof PcmTimeline) timeline.source = spec.sound;
    let workDir: string | undefined;
    let still: { path: string; fps: number } | undefined;
    try {
      if (spec.still) {
        workDir = await mkdtemp(join(tmpdir(), 'push-'));
        still = { path: join(workDir, 'still.h264'), fps: spec.still.fps };
        await writeFile(still.path, annexBKeyframe(spec.still.picture.header, spec.still.picture.frame), {
          mode: 0o600,
        });
      }
    } catch (error) {
      timeline.close();
      if (workDir) await rm(workDir, { recursive: true, force: true });
      throw error;
    }
    const videoInput = spec.video !== undefined;
    const args = buildFfmpegArgs({
      videoInput,
      still,
      opus,
      plan: spec.plan,
      settings: settings.encoding,
      analyzeDurationUs: settings.analyzeDurationUs,
    });
    const ffmpeg = settings.spawn(args, videoInput);
    const pipeline = new FfmpegPipeline(ffmpeg, timeline, settings, workDir, spec);
    writeAudio = (block) => pipeline.#writeAudio(block);
    void ffmpeg.started.then(
      (pid) =>
        pid !== undefined &&
        settings.log.info(
          { pid, plan: still ? 'still' : spec.plan.video, audio: opus ? 'opus' : 'pcm' },
          'ffmpeg started',
        ),
    );
    return pipeline;
  }

  get mixes(): boolean {
    return this.audio instanceof PcmTimeline;
  }

  get pid(): number | undefined {
    return this.ffmpeg.pid;
  }

  get behindSince(): number | undefined {
    const [silent, backlog] = [this.#silentSince, this.#backlog.behindSince];
    return silent === undefined ? backlog : backlog === undefined ? silent : Math.min(silent, backlog);
  }

  get audioDiscardedMs(): number {
    return this.#backlog.discardedMs;
  }

  begin(captureMs: number): void {
    this.audio.begin(captureMs);
    this.source.audioStartMs = this.audio.startMs;
    if (this.source.still) this.source.videoStartMs ??= this.audio.startMs;
  }

  writeAudio(packet: AudioPacket, pcm: PcmSource): void {
    if (this.audio instanceof OpusTimeline) this.audio.push(packet.payload, packet.captureMs);
    else this.audio.pushPcm(pcm.audioPcm(packet), packet.captureMs);
  }

  writeVideo(frame: VideoFrame): void {
    if (this.spec.video === undefined) return;
    const { source } = this;
    // ffmpeg is given video from a keyframe on, which it can decode.
    if (source.videoStartMs === undefined) {
      if (!frame.key) return;
      source.videoStartMs = frame.captureMs;
    }
    const data = frame.bitstream();
    const sinceStartMs = frame.captureMs - source.videoStartMs;
    const pts = Math.max(this.#lastPts + 1, Math.round((sinceStartMs * MATROSKA_CLOCK_RATE) / 1000));
    this.#lastPts = pts;
    this.ffmpeg.writeVideo(matroskaBlockHead(MATROSKA_VIDEO_TRACK, pts, data.length, frame.key));
    if (!this.ffmpeg.writeVideo(data)) return;
    this.#videoBytesWritten += data.length;
    if (this.#heldPcm.length) {
      this.ffmpeg.writeVideo(Buffer.concat(this.#heldPcm));
      this.#heldPcm = [];
    }
    if (this.ffmpeg.videoBacklog > MAX_VIDEO_BACKLOG_BYTES) this.#lose('ffmpeg does not keep up with the video');
  }

  setMuted(muted: boolean): boolean {
    this.audio.muted = muted;
    this.#eagerBlocks = EAGER_BLOCKS;
    return true;
  }

  setSound(sound: SoundSource | undefined): boolean {
    if (!(this.audio instanceof PcmTimeline)) return sound === undefined;
    this.audio.source = sound;
    this.#eagerBlocks = EAGER_BLOCKS;
    return true;
  }

  onTags(listener: (tags: FlvTag[]) => void): void {
    this.#tags = listener;
  }

  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#lost = undefined;
      this.#tags = undefined;
      this.#unwatch();
      this.audio.close();
      await this.ffmpeg.stop(this.settings.stopTimeoutMs);
      if (this.workDir) await rm(this.workDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  /**
   * Audio goes to ffmpeg `BATCH_BLOCKS` blocks at a time once it is up: every write wakes ffmpeg, and
   * one write per 20 ms Opus packet was the largest cost of a push. What comes before the first
   * output, and for a while after an audio command (mute, a sound), goes at once.
   */
  #writeAudio(block: Buffer): void {
    this.#batch.push(block);
    this.#batchBytes += block.length;
    if (this.#batch.length < BATCH_BLOCKS && this.#lastOutputAt !== undefined && this.#eagerBlocks <= 0) return;
    this.#eagerBlocks -= this.#batch.length;
    const data = this.#batch.length === 1 ? this.#batch[0]! : Buffer.concat(this.#batch, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    const transcoding = this.spec.video !== undefined;
    if (this.#backlog.behind(transcoding ? this.#behindAsPcm() : this.ffmpeg.inputBacklog, data.length)) {
      this.#backlog.discard(data);
      return;
    }
    if (transcoding ? this.#writePcmBlock(data) : this.ffmpeg.write(data)) this.#backlog.written(data);
    else if (transcoding && this.source.videoStartMs === undefined) this.#backlog.discard(data); // held too long
  }

  /**
   * PCM into ffmpeg's Matroska input, timed by the samples written before it: as on stdin, audio
   * discarded leaves no gap in ffmpeg's time (`AudioBacklog.place` moves its tags on). Until the
   * first frame is in, it is held: ffmpeg probes the input for the video's size, and would spend
   * its probing time (`analyzeDurationUs`) on the sound that comes while the keyframe is awaited.
   */
  #writePcmBlock(data: Buffer): boolean {
    const time = Math.round((this.#samplesWritten * MATROSKA_CLOCK_RATE) / PCM_SAMPLE_RATE);
    const block = Buffer.concat([matroskaBlockHead(MATROSKA_AUDIO_TRACK, time, data.length, true), data]);
    if (this.source.videoStartMs === undefined) {
      if (this.#heldPcm.length >= MAX_HELD_PCM_BLOCKS) return false;
      this.#heldPcm.push(block);
    } else if (!this.ffmpeg.writeVideo(block)) return false;
    this.#samplesWritten += data.length / PCM_SAMPLE_BYTES;
    return true;
  }

  /**
   * What ffmpeg has not read of its one input, as the PCM in it, for `AudioBacklog` (whose limits
   * are in PCM): the unread bytes in the share of PCM among all written.
   */
  #behindAsPcm(): number {
    const pcmBytes = this.#samplesWritten * PCM_SAMPLE_BYTES;
    return (this.ffmpeg.videoBacklog * pcmBytes) / Math.max(1, pcmBytes + this.#videoBytesWritten);
  }

  #onOutput(data: Buffer, flv: FlvReader): void {
    this.#lastOutputAt = monotonicMs();
    let tags: FlvTag[];
    try {
      tags = flv.push(data);
    } catch (error) {
      this.#lose(`ffmpeg wrote unreadable output: ${(error as Error).message}`);
      return;
    }
    // The audio's own output describes only the audio: the video output's onMetaData stands for both.
    if (flv === this.#flvAudio) tags = tags.filter((tag) => tag.type !== FlvTagType.SCRIPT);
    if (!this.#backlog.discarding) this.#silentSince = undefined;
    tags = this.#backlog.place(tags);
    if (this.source.still && this.#stillFrames < STILL_CLOCK_FRAMES) {
      this.#stillHeld.push(...tags);
      if (!this.#stillOnClock(tags)) return;
      tags = this.#stillHeld;
      this.#stillHeld = [];
    }
    this.#tags?.(tags);
  }

  /**
   * The still picture's frames are let out in real time from the first, which comes once ffmpeg has
   * started: its video time 0 is when the first frames came, not when ffmpeg was asked for them.
   * Otherwise the picture would run behind the clock by ffmpeg's start-up (0.6-1.5 s on a busy
   * machine) for all of standby, and live video coming back, on the clock, would jump ahead by as
   * much: a break in the middle of the broadcast rather than a longer pause where the publisher
   * was lost. The first frame takes longer to encode than the next ones, so the earliest time 0
   * told by the first STILL_CLOCK_FRAMES frames is taken, and they are held until it is known.
   * True once it is set.
   */
  #stillOnClock(tags: FlvTag[]): boolean {
    const now = monotonicMs();
    for (const tag of tags) {
      if (!isVideoFrameTag(tag)) continue;
      this.#stillStartMs = Math.min(this.#stillStartMs, now - tag.timestamp);
      if (++this.#stillFrames === STILL_CLOCK_FRAMES) {
        this.source.videoStartMs = this.#stillStartMs;
        return true;
      }
    }
    return false;
  }

  #lose(reason: string, kind: FailureKind = 'local'): void {
    this.#failOutput(new OpenError(reason, kind)); // no effect once it has output
    const listener = this.#lost;
    this.#lost = undefined;
    this.#unwatch();
    listener?.(reason, kind);
  }

  #onLine(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > KEPT_LOG_LINES) this.#lines.shift();
    this.settings.log.debug({ ffmpeg: line });
  }

  #exitReason(code: number | null, signal: NodeJS.Signals | null): string {
    const lines = this.#lines;
    const errors = lines
      .filter((l) => /\[(error|fatal)\]/.test(l))
      .map((l) => l.replace(/^.*\[(error|fatal)\]\s*/, ''));
    if (errors.length) return `ffmpeg exited (${signal ?? `code ${code}`}): ${errors.slice(-3).join('; ')}`;
    if (signal) return `ffmpeg was ended by ${signal}`;
    return `ffmpeg exited (code ${code})${lines.length ? `: ${lines.at(-1)!.trim()}` : ''}`;
  }
}
