import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { SecureContext } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TypedEmitter } from '../events.js';
import { annexBKeyframe, avcFrame, avcSequenceHeader, FlvReader, FlvTagType, type FlvTag } from '../media/flv.js';
import { avcDecoderConfiguration, H264Depacketizer, parameterSets, spsPictureSize, type AccessUnit } from '../media/h264.js';
import { RTP_HEADER_SIZE } from '../media/rtp.js';
import type { MediaSink, Publisher } from '../publishers/publisher.js';
import type { CachedPacket } from '../publishers/start-cache.js';
import { decodeAmf0, type Amf0Value } from '../rtmp/amf0.js';
import { RtmpPublisher } from '../rtmp/client.js';
import type { DestinationResolver } from '../security/destination-policy.js';
import { scrubDestination, type Destination } from './destination.js';
import { classifyFailure, HEALTHY_RESET_MS, RECONNECT_SOCKET_TIMEOUT_MS, RestorePolicy, type FailureKind, type RestoreSettings } from './restore.js';
import type { EncodingPlan, EncodingSettings, VideoRequest } from './encoding.js';
import { AudioMixer, PCM_SAMPLE_RATE } from '../audio/mixer.js';
import { buildFfmpegArgs, buildInputSdp } from '../ffmpeg/ffmpeg-args.js';
import { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { LagGuard } from './lag-guard.js';
import { OutputBuffer, type MediaOutput, type OutBufferSettings } from './out-buffer.js';
import type { SoundPlayer } from '../audio/sound.js';
import { reservePorts, udpPortBound } from '../ffmpeg/udp-ports.js';

export type TransponderState = 'starting' | 'running' | 'standby' | 'reconnecting' | 'stopping' | 'stopped' | 'failed';

/** Allowed state changes; anything else is a bug and is refused loudly. */
const TRANSITIONS: Record<TransponderState, readonly TransponderState[]> = {
  starting: ['running', 'stopping', 'failed'],
  running: ['standby', 'reconnecting', 'stopping', 'failed'],
  standby: ['running', 'reconnecting', 'stopping', 'failed'],
  reconnecting: ['running', 'standby', 'stopping', 'failed'],
  failed: [],
  stopping: ['stopped'],
  stopped: [],
};

export interface TransponderSettings {
  ffmpegPath: string;
  /** Where sound files for `sound_on` are found. */
  mediaDir: string;
  encoding: EncodingSettings;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  rtpPortRange: [number, number];
  analyzeDurationUs: number;
  /** Connecting to the destination and publishing must take no longer. */
  connectTimeoutMs: number;
  flashVer: string;
  /** Local address of the outbound RTMP connection; undefined lets the system choose. */
  localAddress?: string;
  /** Whether onMetaData is sent. */
  sendMetadata: boolean;
  /** TLS context for RTMPS: the certificate authorities trusted. */
  secureContext: SecureContext;
  /** Resolves the destination host to the address to connect to, once per connection. */
  /** Transponders in all, and per stream. */
  limits: { total: number; perStream: number };
  /** Looks the destination host up and checks every answer against the destination policy. */
  resolveDestination: DestinationResolver;
  /** Restoring the output after a drop. */
  restore: RestoreSettings;
  /** Output the destination has not acknowledged for this long is a drop. */
  stallTimeoutMs: number;
  /** A destination lagging more than this (ms) gets media dropped up to a keyframe; 0: never. */
  maxLagMs: number;
  /** Output buffering in front of each link. */
  outBuffer: OutBufferSettings;
  /** How long a transponder whose publisher went away holds the output with a still picture; 0: it ends at once. */
  publisherGraceMs: number;
}

export interface TransponderOptions {
  /** Startup options as the request gave them (`options` in Web Call Server's API). */
  options: object;
  /** The video fields of the request: the plan is made again for a publisher that comes back. */
  video: VideoRequest;
  /** flashVer for the RTMP connect, when the request set one. */
  flashVer?: string;
}

export type TransponderEvents = {
  state: [TransponderState];
  closed: [];
};

const PORT_POLL_MS = 10;
const KEPT_LOG_LINES = 20;
/** How long the depacketizer waits for a missing video packet (a NACK retransmission). */
const REORDER_WAIT_MS = 100;
/** Output waiting in the gateway for a slow destination beyond this fails the transponder (~50 s at 2.5 Mb/s). */
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;
/** PCM ffmpeg has not read beyond this (~5 s) means it no longer keeps up. */
const MAX_PCM_BACKLOG_BYTES = 5 * PCM_SAMPLE_RATE * 4;
/** An ffmpeg that has written nothing for this long (it writes AAC every ~21 ms) is replaced. */
const FFMPEG_STALL_MS = 5000;
const WATCH_MS = 500;

/** A failed attempt to open the output, and what kind of failure it was. */
class OpenError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
  ) {
    super(message);
  }
}

/**
 * The local half of the output, replaced as a whole: ffmpeg (AAC, transcoded video), the audio
 * mixer feeding it, the UDP socket and SDP file of transcoded video. Its time 0 for audio is the
 * mixer's first sample, for video the first packet given to ffmpeg.
 */
interface Pipeline {
  ffmpeg: FfmpegProcess;
  /** Resolves at ffmpeg's first output; rejects if it exits first. */
  output: Promise<void>;
  flv: FlvReader;
  mixer?: AudioMixer;
  socket?: Socket;
  videoPort?: number;
  workDir?: string;
  videoStartMs?: number;
  /** Shows the last keyframe as a still picture (the publisher is away). */
  still?: boolean;
  /** Tags of a pipeline waiting to take over, kept until its first video keyframe. */
  held?: FlvTag[];
  /** Added to the pipeline's timestamps: a pipeline that took over starts after what was sent. */
  shiftMs?: number;
  lastOutputAt: number;
  lines: string[];
  watch?: NodeJS.Timeout;
}

/**
 * One (stream, destination) pair. The gateway publishes to the destination over its own RTMP
 * connection: H.264 is passed through by the gateway itself (depacketized, written as FLV tags the
 * moment a frame is complete). Audio is decoded and mixed in the gateway (mute, sound files) and
 * written to ffmpeg as PCM; ffmpeg encodes it to AAC, transcodes video when needed (fed the
 * publisher's RTP over loopback UDP) and hands its FLV tags back on stdout. Every output timestamp is
 * on the publisher's clock, mapped by the gateway, so the tracks stay in sync.
 *
 * The output has two halves that fail separately: the link (the RTMP connection) and the pipeline
 * (ffmpeg and what feeds it). When either breaks while running, the transponder goes to
 * `reconnecting`, opens what is missing again after a wait (`RestorePolicy`), and each new link
 * starts with codec headers and a keyframe, its timestamps going on from where the last one ended.
 * The publisher's side is not touched.
 */
export class Transponder extends TypedEmitter<TransponderEvents> implements MediaSink {
  readonly mediaSessionId = randomUUID();
  readonly createdAt = Date.now();
  state: TransponderState = 'starting';
  lastError: string | undefined;
  outputSize: { width: number; height: number } | undefined;
  readonly counters = { packetsSent: 0, bytesSent: 0, frames: 0, drops: 0, reconnects: 0 };
  muted = false;
  soundEnabled = false;

  #rtmp: RtmpPublisher | undefined;
  /** The publisher is away until it returns or this time passes: the output goes on with a still picture and silence. */
  #standbyUntil: number | undefined;
  /** The latest AVC sequence header sent, and the latest keyframe after it: the still picture. */
  #videoHeader: Buffer | undefined;
  #lastKeyframe: { header: Buffer; frame: Buffer } | undefined;
  /** Counts pipeline switches (to and from the still picture): a switch overtaken by another gives way. */
  #switches = 0;
  /** A transcoding pipeline for a publisher back from standby, fed while the still picture goes on. */
  #pending: Pipeline | undefined;
  /** Where the link's media is written: the output buffer when enabled, else the link itself. */
  #out: MediaOutput | undefined;
  #buffer: OutputBuffer | undefined;
  #pipe: Pipeline | undefined;
  #sound: SoundPlayer | undefined;
  #depacketizer: H264Depacketizer | undefined;
  /** RTMP time of the current link's first video keyframe: audio before it is not sent. */
  #linkStartTs: number | undefined;
  /** SPS and PPS of the sequence header sent on the current link. */
  #sps: Buffer | undefined;
  #pps: Buffer | undefined;
  /** Bytes written and acknowledged, and frames lost, on earlier links. */
  #pastOutput = { written: 0, acknowledged: 0, framesLost: 0, bufferings: 0, framesDropped: 0 };
  /** Drops media for a destination that lags too far behind, up to the next keyframe. */
  #guard: LagGuard | undefined;
  /** Publisher clock (ms) of RTMP timestamp 0: the first tag sent. */
  #baseMs: number | undefined;
  #lastTimestamp = { audio: 0, video: 0 };
  readonly #policy: RestorePolicy;
  #retryTimer: NodeJS.Timeout | undefined;
  /** When output was last restored (or first started). */
  #upSince = 0;
  #pinnedAddress: string | undefined;
  #failure: FailureKind | undefined;
  #settled: Promise<void>;
  #settle!: () => void;
  #closing: Promise<void> | undefined;
  #releasing: Promise<void> | undefined;

  constructor(
    public publisher: Publisher,
    readonly destination: Destination,
    public plan: EncodingPlan,
    readonly request: TransponderOptions,
    private readonly settings: TransponderSettings,
    private readonly log: Logger,
    /** The address the startup resolved and checked, for the first connection. */
    pinnedAddress?: string,
  ) {
    super((event, error) => log.error({ err: error, event }, 'transponder listener failed'));
    this.#pinnedAddress = pinnedAddress;
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
    this.#policy = new RestorePolicy(settings.restore);
  }

  /** Resolves once the transponder is running, has failed, or is being stopped. */
  /** For the emitters this transponder listens to: a listener that threw is logged, the others go on. */
  readonly #listenerFailed = (event: string, error: unknown): void => this.log.error({ err: error, event }, 'transponder listener failed');

  get ready(): Promise<void> {
    return this.#settled;
  }

  /**
   * Whose fault a failure was: the destination's (it refused the publish, or could not be reached)
   * or the gateway's own (ffmpeg, the pipeline). Undefined unless failed.
   */
  get errorCode(): 'destination_refused' | 'destination_unreachable' | 'internal' | undefined {
    if (this.state !== 'failed') return undefined;
    if (this.#failure === 'rejected' || this.#failure === 'busy') return 'destination_refused';
    return this.#failure === 'unreachable' ? 'destination_unreachable' : 'internal';
  }

  /** Starting, running, in standby or reconnecting: audio commands apply. */
  get isActive(): boolean {
    return this.state === 'starting' || this.state === 'running' || this.state === 'standby' || this.state === 'reconnecting';
  }

  /** Output is up: live, or the still picture while the publisher is away. */
  get #up(): boolean {
    return this.state === 'running' || this.state === 'standby';
  }

  /** Whether ffmpeg carries the publisher's video (transcoding) rather than the gateway (passthrough). */
  get #videoInFfmpeg(): boolean {
    return this.publisher.videoCodec !== undefined && this.plan.video === 'transcode' && !this.#awaitingPublisher;
  }

  /** The publisher went away and has not come back (the state is `standby`, or `reconnecting` meanwhile). */
  get #awaitingPublisher(): boolean {
    return this.#standbyUntil !== undefined;
  }

  /** The stream name a transponder in standby waits to be published again. */
  get awaitedStream(): string | undefined {
    return this.#awaitingPublisher ? this.publisher.name : undefined;
  }

  /**
   * The publisher went away (not ended on purpose): the RTMP session is kept with the last
   * keyframe sent as a still picture, and silence (or the sound being played), until `resume` or
   * the end of the grace period, which the service enforces. False when the output was not up
   * (still starting, or ended): such a transponder ends with its publisher.
   */
  publisherLost(reason: string, graceMs: number): boolean {
    if (this.state !== 'running' && this.state !== 'reconnecting') return false;
    this.publisher.detach(this);
    this.#standbyUntil = Date.now() + graceMs;
    this.lastError = `publisher lost: ${reason}`;
    this.log.info({ reason, graceMs }, 'publisher lost: holding the output with a still picture');
    if (this.state === 'running') {
      this.#transition('standby');
      void this.#switchPipeline();
    } else {
      this.#resetVideo(); // reconnecting: the restore opens the still picture
    }
    return true;
  }

  /** The stream is published again: `publisher`'s live media replaces the still picture. */
  resume(publisher: Publisher, plan: EncodingPlan): void {
    if (!this.#awaitingPublisher) return;
    this.publisher = publisher;
    this.plan = plan;
    this.#standbyUntil = undefined;
    this.log.info('publisher back: live again');
    if (this.state === 'standby') {
      this.#transition('running');
      void this.#switchPipeline();
    } else {
      this.#resetVideo(); // reconnecting: the restore attaches the new publisher
    }
  }

  /**
   * Replaces the pipeline for the current source (the still picture or the publisher), keeping the
   * link: the new source starts with its own codec headers and a keyframe, timestamps going on.
   */
  async #switchPipeline(): Promise<void> {
    const switchNo = ++this.#switches;
    void this.#dropPending();
    // Transcoded video back from standby takes a while to come out of ffmpeg: the still picture
    // goes on until it does. Otherwise the current pipeline goes now.
    const handOver = this.#videoInFfmpeg && this.#pipe?.still === true;
    if (!handOver) void this.#dropPipeline();
    this.#resetVideo();
    let pipe: Pipeline;
    try {
      pipe = await this.#startPipeline();
    } catch (error) {
      if (switchNo === this.#switches && this.#up) this.#lose((error as Error).message, 'local', true);
      return;
    }
    if (switchNo !== this.#switches || !this.#up || !this.#rtmp || (this.#pipe && !handOver)) {
      await this.#closePipeline(pipe);
      return;
    }
    if (handOver && this.#pipe) {
      pipe.held = [];
      this.#pending = pipe;
      // Without video from it in time, it takes over anyway.
      setTimeout(() => this.#takeOver(pipe), this.settings.startTimeoutMs).unref();
    } else {
      this.#usePipeline(pipe);
    }
    this.#attachSource(false);
  }

  /** The pending pipeline replaces the current one, what it held going out first. */
  #takeOver(pipe: Pipeline): void {
    if (this.#pending !== pipe) return;
    this.#pending = undefined;
    void this.#dropPipeline();
    this.#usePipeline(pipe);
    const held = pipe.held ?? [];
    pipe.held = undefined;
    // Its first keyframe was captured before the last still frames were sent: its timeline is moved
    // on to one frame after them, audio and video alike.
    const keyframe = held.find((tag) => tag.type === FlvTagType.VIDEO && tag.body[1] === 1);
    if (keyframe && pipe.videoStartMs !== undefined) {
      const frameMs = 1000 / (this.publisher.frameRate ?? 30);
      pipe.shiftMs = Math.max(0, this.#lastTimestamp.video + frameMs - this.#timestamp(pipe.videoStartMs + keyframe.timestamp));
    }
    for (const tag of held) this.#forwardTag(pipe, tag);
  }

  async #dropPending(): Promise<void> {
    const pipe = this.#pending;
    this.#pending = undefined;
    if (pipe) await this.#closePipeline(pipe);
  }

  /** A new source on the link: its sequence header and metadata are sent again. */
  #resetVideo(): void {
    this.#sps = undefined;
    this.#pps = undefined;
    if (this.#rtmp && this.publisher.videoCodec && !this.#videoInFfmpeg && !this.#awaitingPublisher) this.#depacketizer = this.#newDepacketizer();
    else this.#depacketizer = undefined;
  }

  /** Whether an attempt to open the output is still wanted. */
  get #opening(): boolean {
    return this.state === 'starting' || this.state === 'reconnecting';
  }

  /** Starts the pipeline in the background; `ready` tells when it is up. */
  start(): void {
    this.#run().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error), error instanceof OpenError ? error.kind : 'local'));
  }

  async #run(): Promise<void> {
    if (this.publisher.videoCodec) await this.#awaitKeyframe();
    if (this.state !== 'starting') return;
    await this.#open();
    if (this.state !== 'starting') return;
    this.#upSince = Date.now();
    this.#transition('running');
    this.log.info({ size: this.outputSize, plan: this.plan.video }, 'publishing to the destination');
    this.#settle();
  }

  /**
   * Opens what is missing of the output, the link and the pipeline side by side, starts feeding
   * them and waits for ffmpeg's first output. Throws an `OpenError`; closes what it opened when it
   * fails or is no longer wanted.
   */
  async #open(): Promise<void> {
    const first = this.state === 'starting';
    const [linked, piped] = await Promise.allSettled([
      this.#rtmp ? Promise.resolve(undefined) : this.#connect(),
      this.#pipe ? Promise.resolve(undefined) : this.#startPipeline(),
    ]);
    const link = linked.status === 'fulfilled' ? linked.value : undefined;
    const pipe = piped.status === 'fulfilled' ? piped.value : undefined;
    if (linked.status === 'rejected' || piped.status === 'rejected' || !this.#opening) {
      await Promise.all([link?.close(), pipe && this.#closePipeline(pipe)]);
      if (linked.status === 'rejected') throw linked.reason;
      if (piped.status === 'rejected') throw new OpenError((piped.reason as Error).message, 'local');
      return;
    }
    if (link) this.#useLink(link);
    if (pipe) this.#usePipeline(pipe);
    this.#attachSource(first);
    try {
      await this.#withinStartTimeout(this.#pipe?.output, 'ffmpeg wrote no output');
    } catch (error) {
      throw new OpenError((error as Error).message, 'local');
    }
    if (!this.#opening) return;
    if (!this.#rtmp) throw new OpenError(this.lastError ?? 'the destination connection was lost', 'unreachable');
    if (!this.#pipe) throw new OpenError(this.lastError ?? 'ffmpeg ended', 'local');
  }

  /**
   * Starts feeding the output. The publisher: from the cached keyframe when it is newer than
   * anything sent before (at once, its timestamps going on), otherwise from the keyframe asked for
   * now. The still picture: from now.
   */
  #attachSource(first: boolean): void {
    const { publisher } = this;
    if (!this.#awaitingPublisher) {
      const cachedMs = publisher.cachedKeyframeMs;
      const fromCache = cachedMs !== undefined && (first || (this.#baseMs !== undefined && cachedMs - this.#baseMs > this.#lastTimestamp.video));
      publisher.attach(this, fromCache);
      if (!fromCache) publisher.requestKeyframe(true);
    }
    // With no packet yet (an audio-only publisher that is silent, or none), the audio timeline starts now.
    const pipe = this.#pending ?? this.#pipe;
    pipe?.mixer?.begin(Date.now());
    if (pipe?.still) pipe.videoStartMs = pipe.mixer?.startMs;
  }

  async #connect(): Promise<RtmpPublisher> {
    const { destination, settings } = this;
    try {
      // The startup's checked address for the first connection; every reconnect looks up and checks again.
      const address = this.#pinnedAddress ?? (await settings.resolveDestination(destination.host, destination.port));
      this.#pinnedAddress = undefined;
      return await RtmpPublisher.publish({
        protocol: destination.protocol,
        address,
        port: destination.port,
        host: destination.host,
        app: destination.app,
        tcUrl: destination.tcUrl,
        streamName: destination.streamName,
        query: destination.query,
        credentials: destination.credentials,
        flashVer: this.request.flashVer ?? settings.flashVer,
        localAddress: settings.localAddress,
        secureContext: settings.secureContext,
        timeoutMs: settings.connectTimeoutMs,
        socketTimeoutMs: this.state === 'reconnecting' ? RECONNECT_SOCKET_TIMEOUT_MS : undefined,
        stallTimeoutMs: settings.stallTimeoutMs,
        onListenerError: this.#listenerFailed,
      });
    } catch (error) {
      const message = `could not publish to the destination: ${scrubDestination((error as Error).message, this.destination)}`;
      throw new OpenError(message, classifyFailure(error));
    }
  }

  /** Makes `rtmp` the link: a new RTMP session, which starts with headers and a keyframe. */
  #useLink(rtmp: RtmpPublisher): void {
    this.#rtmp = rtmp;
    const { outBuffer } = this.settings;
    this.#guard = new LagGuard(rtmp, rtmp, this.settings.maxLagMs);
    this.#buffer = outBuffer.enabled
      ? new OutputBuffer(this.#guard, outBuffer, undefined, (state) => this.log.debug({ state }, 'output buffer'))
      : undefined;
    this.#out = this.#buffer ?? this.#guard;
    // Audio waits for the link's first keyframe, if video is to come.
    const video = this.#awaitingPublisher ? this.#lastKeyframe !== undefined : this.publisher.videoCodec !== undefined;
    this.#linkStartTs = video ? undefined : this.#lastTimestamp.audio;
    rtmp.on('closed', (error) => {
      if (this.#rtmp !== rtmp || !error) return;
      this.#lose(`destination connection lost: ${scrubDestination(error.message, this.destination)}`, classifyFailure(error), false);
    });
    this.#resetVideo();
  }

  #newDepacketizer(): H264Depacketizer {
    return new H264Depacketizer((unit) => this.#writeVideoUnit(unit), {
      maxWaitMs: REORDER_WAIT_MS,
      onLoss: () => this.publisher.requestKeyframe(),
    });
  }

  /** Ends the link, its counts kept; resolves when its socket is closed. */
  async #dropLink(): Promise<void> {
    const rtmp = this.#rtmp;
    this.#pastOutput.framesLost += this.#depacketizer?.framesLost ?? 0;
    this.#rtmp = undefined;
    this.#pastOutput.bufferings += this.#buffer?.bufferings ?? 0;
    this.#pastOutput.framesDropped += this.#guard?.framesDropped ?? 0;
    this.#guard = undefined;
    this.#buffer?.close();
    this.#buffer = undefined;
    this.#out = undefined;
    this.#depacketizer = undefined;
    if (!rtmp) return;
    this.#pastOutput.written += rtmp.bytesWritten;
    this.#pastOutput.acknowledged += rtmp.bytesAcknowledged;
    await rtmp.close();
  }

  async #startPipeline(): Promise<Pipeline> {
    const { publisher, settings } = this;
    const mixer = await AudioMixer.create({ write: (pcm) => this.#writePcm(pipe, pcm) });
    mixer.muted = this.muted;
    mixer.source = this.#sound;
    let videoSdpPath: string | undefined;
    let videoPort: number | undefined;
    let workDir: string | undefined;
    const stillFrame = this.#awaitingPublisher && this.#lastKeyframe;
    let still: { path: string; fps: number } | undefined;
    try {
      if (stillFrame) {
        workDir = await mkdtemp(join(tmpdir(), 'transponder-'));
        still = { path: join(workDir, 'still.h264'), fps: Math.min(30, Math.max(5, Math.round(publisher.frameRate ?? 30))) };
        await writeFile(still.path, annexBKeyframe(stillFrame.header, stillFrame.frame), { mode: 0o600 });
      } else if (this.#videoInFfmpeg) {
        videoPort = await reservePorts(settings.rtpPortRange, 2);
        workDir = await mkdtemp(join(tmpdir(), 'transponder-'));
        videoSdpPath = join(workDir, 'input.sdp');
        const sdp = buildInputSdp({ codec: publisher.videoCodec!, port: videoPort, spropParameterSets: publisher.spropParameterSets });
        await writeFile(videoSdpPath, sdp, { mode: 0o600 });
      }
    } catch (error) {
      mixer.close();
      if (workDir) await rm(workDir, { recursive: true, force: true });
      throw error;
    }
    const args = buildFfmpegArgs({ videoSdpPath, still, plan: this.plan, settings: settings.encoding, analyzeDurationUs: settings.analyzeDurationUs });
    const ffmpeg = new FfmpegProcess(settings.ffmpegPath, args, this.#listenerFailed);
    const pipe: Pipeline = { ffmpeg, output: Promise.resolve(), flv: new FlvReader(), mixer, videoPort, workDir, still: still !== undefined, lastOutputAt: Date.now(), lines: [] };
    pipe.output = new Promise<void>((resolve, reject) => {
      ffmpeg.once('output', () => resolve());
      ffmpeg.once('exit', (code, signal) => reject(new Error(this.#exitReason(pipe, code, signal))));
    });
    pipe.output.catch(() => {}); // also reported through 'exit'
    ffmpeg.on('line', (line) => this.#onLine(pipe, line));
    ffmpeg.on('output', (data) => this.#onFfmpegOutput(pipe, data));
    ffmpeg.on('exit', (code, signal) => this.#onExit(pipe, code, signal));
    this.log.info({ pid: ffmpeg.pid, plan: still ? 'still' : this.plan.video }, 'ffmpeg started');
    if (videoPort !== undefined) {
      try {
        await this.#awaitPortBound(pipe, videoPort);
      } catch (error) {
        await this.#closePipeline(pipe);
        throw error;
      }
      pipe.socket = createSocket('udp4');
      pipe.socket.on('error', (error) => this.log.warn({ err: error }, 'RTP socket error'));
    }
    return pipe;
  }

  /** Makes `pipe` the pipeline and watches that ffmpeg keeps writing and reading. */
  #usePipeline(pipe: Pipeline): void {
    this.#pipe = pipe;
    pipe.watch = setInterval(() => {
      if (this.#pipe !== pipe || !this.#up) return;
      const silentMs = Date.now() - pipe.lastOutputAt;
      if (silentMs >= FFMPEG_STALL_MS) this.#losePipeline(pipe, `ffmpeg made no progress for ${Math.round(silentMs / 1000)} s`);
    }, WATCH_MS);
  }

  #losePipeline(pipe: Pipeline, reason: string): void {
    if (this.#pipe === pipe) this.#lose(reason, 'local', true);
  }

  /** Ends the current pipeline, if any; resolves when ffmpeg is gone. */
  async #dropPipeline(): Promise<void> {
    const pipe = this.#pipe;
    this.#pipe = undefined;
    await Promise.all([pipe && this.#closePipeline(pipe), this.#dropPending()]);
  }

  async #closePipeline(pipe: Pipeline): Promise<void> {
    clearInterval(pipe.watch);
    pipe.mixer?.close();
    await pipe.ffmpeg.stop(this.settings.stopTimeoutMs);
    pipe.socket?.close();
    if (pipe.workDir) await rm(pipe.workDir, { recursive: true, force: true });
  }

  /**
   * Output broke: the pipeline (and the link, unless kept) is ended. While running, go to
   * `reconnecting` and open what is missing again after a wait, or fail when restoring is off or
   * exhausted. Before the first start a failure fails the startup; during an attempt, the attempt
   * reports it.
   */
  #lose(reason: string, kind: FailureKind, keepLink: boolean): void {
    if (!keepLink) void this.#dropLink();
    void this.#dropPipeline();
    if (this.state === 'starting') return this.#fail(reason, kind);
    if (!this.#up) return;
    this.counters.drops++;
    this.lastError = reason;
    this.log.warn({ reason }, 'output lost');
    if (Date.now() - this.#upSince >= HEALTHY_RESET_MS) this.#policy.healthy();
    this.#switches++; // a switch under way gives way to the restore
    this.#transition('reconnecting');
    if (!keepLink) this.publisher.detach(this);
    this.#scheduleAttempt(kind, reason);
  }

  #scheduleAttempt(kind: FailureKind, reason: string): void {
    const decision = this.#policy.next(kind, reason);
    if ('giveUp' in decision) return this.#fail(decision.giveUp, kind);
    this.log.info({ attempt: this.#policy.attempt, inMs: decision.retryInMs }, 'restoring the output');
    this.#retryTimer = setTimeout(() => void this.#restore(), decision.retryInMs);
  }

  async #restore(): Promise<void> {
    if (this.state !== 'reconnecting') return;
    try {
      await this.#open();
    } catch (error) {
      if (this.state !== 'reconnecting') return;
      if (!this.#rtmp) this.publisher.detach(this); // passed-through video goes on over a kept link
      void this.#dropPipeline();
      this.lastError = (error as Error).message;
      this.log.warn({ reason: this.lastError, attempt: this.#policy.attempt }, 'restore attempt failed');
      this.#scheduleAttempt(error instanceof OpenError ? error.kind : 'local', this.lastError);
      return;
    }
    if (this.state !== 'reconnecting') return;
    this.#policy.restored();
    this.#upSince = Date.now();
    this.counters.reconnects++;
    this.#transition(this.#awaitingPublisher ? 'standby' : 'running');
    this.log.info({ attempt: this.#policy.attempt }, 'output restored');
  }

  write(packet: CachedPacket): void {
    const { kind, wallclockMs } = packet;
    this.counters.packetsSent++;
    this.counters.bytesSent += RTP_HEADER_SIZE + packet.payload.length;
    const pipe = this.#pending ?? this.#pipe;
    pipe?.mixer?.begin(wallclockMs); // the audio timeline starts with the first packet of either kind
    if (kind === 'audio') {
      pipe?.mixer?.push(packet.payload, wallclockMs);
    } else if (this.#depacketizer) {
      this.#depacketizer.push(packet);
    } else if (pipe?.socket && pipe.videoPort !== undefined) {
      // ffmpeg is given video from a keyframe on, which it can decode.
      if (pipe.videoStartMs === undefined && !packet.keyframe) return;
      pipe.videoStartMs ??= wallclockMs;
      pipe.socket.send(this.publisher.videoRtp(packet), pipe.videoPort, '127.0.0.1');
    }
  }

  #writePcm(pipe: Pipeline, pcm: Buffer): void {
    if (!pipe.ffmpeg.write(pcm)) return;
    if (pipe.ffmpeg.inputBacklog > MAX_PCM_BACKLOG_BYTES) this.#losePipeline(pipe, 'ffmpeg does not keep up with the audio');
  }

  /** Mutes or unmutes the publisher's audio in this output (a sound being played goes on). */
  setMuted(muted: boolean): void {
    this.muted = muted;
    if (this.#pipe?.mixer) this.#pipe.mixer.muted = muted;
  }

  /** Plays `player` into the output, replacing any sound playing; it ends by itself unless looping. */
  playSound(player: SoundPlayer): void {
    const previous = this.#sound;
    this.#sound = player;
    this.soundEnabled = true;
    if (this.#pipe?.mixer) this.#pipe.mixer.source = player;
    player.once('ended', (error) => {
      if (error) this.log.warn({ error }, 'sound file ended with an error');
      if (this.#sound === player) void this.stopSound();
    });
    void previous?.stop();
  }

  /** Stops the sound being played, if any. */
  async stopSound(): Promise<void> {
    const player = this.#sound;
    this.#sound = undefined;
    this.soundEnabled = false;
    if (this.#pipe?.mixer) this.#pipe.mixer.source = undefined;
    await player?.stop();
  }

  /** RTMP timestamp of a moment on the publisher's clock; the first media written is time 0. */
  #timestamp(wallclockMs: number): number {
    this.#baseMs ??= wallclockMs;
    return Math.round(wallclockMs - this.#baseMs);
  }

  #writeVideoUnit(unit: AccessUnit): void {
    const rtmp = this.#rtmp;
    const out = this.#out;
    const wallclockMs = this.publisher.wallclockMs('video', unit.timestamp);
    if (!rtmp || !out || wallclockMs === undefined) return;
    const timestamp = Math.max(this.#lastTimestamp.video, this.#timestamp(wallclockMs));
    const { sps, pps } = parameterSets(unit);
    if (sps && pps && !(this.#sps?.equals(sps) && this.#pps?.equals(pps))) {
      const first = !this.#sps;
      this.#sps = sps;
      this.#pps = pps;
      this.#updateSize(sps);
      if (first && this.settings.sendMetadata) out.writeMetadata(this.#metadata());
      this.#videoHeader = avcSequenceHeader(avcDecoderConfiguration(sps, pps));
      out.writeVideo(timestamp, this.#videoHeader);
    }
    if (!this.#sps) return; // no decoder configuration yet: nothing decodable to send
    this.#linkStartTs ??= timestamp;
    const frame = avcFrame(unit);
    if (unit.key && this.#videoHeader) this.#lastKeyframe = { header: this.#videoHeader, frame };
    out.writeVideo(timestamp, frame);
    this.#lastTimestamp.video = timestamp;
    this.counters.frames++;
    this.#checkBacklog(rtmp);
  }

  /** A destination that takes less than it is sent would make the gateway buffer without end. */
  #checkBacklog(rtmp: RtmpPublisher): void {
    if (rtmp.bufferedBytes > MAX_BACKLOG_BYTES && this.#rtmp === rtmp) {
      this.#lose(`the destination does not keep up: ${Math.round(rtmp.bufferedBytes / 1048576)} MB waiting to be sent`, 'unreachable', false);
    }
  }

  #updateSize(sps: Buffer): void {
    try {
      this.outputSize = spsPictureSize(sps);
    } catch (error) {
      this.log.warn({ err: error }, 'unreadable SPS');
    }
  }

  /** onMetaData for passthrough; ffmpeg writes its own when it transcodes. */
  #metadata(): Record<string, Amf0Value> {
    const { encoding } = this.settings;
    const frameRate = this.publisher.frameRate;
    return {
      ...(this.outputSize ? { width: this.outputSize.width, height: this.outputSize.height } : {}),
      ...(frameRate ? { framerate: Math.round(frameRate * 100) / 100 } : {}),
      videocodecid: 7,
      audiocodecid: 10,
      audiosamplerate: encoding.audioSampleRate,
      audiosamplesize: 16,
      stereo: true,
      audiodatarate: this.plan.audioBitrateKbps ?? encoding.audioBitrateKbps,
      encoder: 'webrtc-rtmp-gateway',
    };
  }

  #onFfmpegOutput(pipe: Pipeline, data: Buffer): void {
    if (this.#pipe !== pipe && this.#pending !== pipe) return;
    pipe.lastOutputAt = Date.now();
    let tags: FlvTag[];
    try {
      tags = pipe.flv.push(data);
    } catch (error) {
      this.#losePipeline(pipe, `ffmpeg wrote unreadable output: ${(error as Error).message}`);
      return;
    }
    if (pipe.held) {
      pipe.held.push(...tags);
      if (tags.some((tag) => tag.type === FlvTagType.VIDEO && tag.body[0]! >> 4 === 1 && tag.body[1] === 1)) this.#takeOver(pipe);
      return;
    }
    for (const tag of tags) this.#forwardTag(pipe, tag);
  }

  /**
   * Forwards a tag from ffmpeg, its time mapped onto the publisher's clock: ffmpeg's audio time 0 is
   * the mixer's first sample, its video time 0 the first video packet it was given. Codec headers
   * always go through; frames start on each link with a video keyframe.
   */
  #forwardTag(pipe: Pipeline, tag: FlvTag): void {
    const rtmp = this.#rtmp;
    const out = this.#out;
    if (!rtmp || !out) return;
    if (tag.type === FlvTagType.SCRIPT) {
      // Passing video through, ffmpeg describes only the audio, and the still picture is no new
      // stream: the gateway's own onMetaData stands.
      if (!this.#videoInFfmpeg || pipe.still || !this.settings.sendMetadata) return;
      const [, metadata] = decodeAmf0(tag.body);
      if (metadata && typeof metadata === 'object') out.writeMetadata({ ...(metadata as Record<string, Amf0Value>), encoder: 'webrtc-rtmp-gateway' });
      return;
    }
    const kind = tag.type === FlvTagType.VIDEO ? 'video' : tag.type === FlvTagType.AUDIO ? 'audio' : undefined;
    if (!kind) return;
    const sequenceHeader = tag.body[1] === 0;
    const start = kind === 'audio' ? pipe.mixer?.startMs : pipe.videoStartMs;
    if (start === undefined) return;
    // ffmpeg starts each input at time 0; AAC's 1024 priming samples are moved to time 0 in FLV.
    const primingMs = kind === 'audio' ? (1024 / this.settings.encoding.audioSampleRate) * 1000 : 0;
    let timestamp = this.#timestamp(start + tag.timestamp - primingMs) + Math.round(pipe.shiftMs ?? 0);
    if (timestamp < 0 && !sequenceHeader) return; // the encoder's priming
    // Audio of a new pipeline from before what was already sent (a hand-over) would overlap it.
    if (kind === 'audio' && !sequenceHeader && timestamp < this.#lastTimestamp.audio) return;
    timestamp = Math.max(this.#lastTimestamp[kind], timestamp);
    if (kind === 'audio') {
      if (!sequenceHeader && (this.#linkStartTs === undefined || timestamp < this.#linkStartTs)) return;
      out.writeAudio(timestamp, tag.body);
    } else {
      const keyframe = tag.body[0]! >> 4 === 1;
      if (sequenceHeader) {
        this.#sizeFromConfiguration(tag.body.subarray(5));
        if (!pipe.still) this.#videoHeader = tag.body;
      } else if (this.#linkStartTs === undefined && !keyframe) return;
      else {
        this.#linkStartTs ??= timestamp;
        this.counters.frames++;
        if (keyframe && !pipe.still && this.#videoHeader) this.#lastKeyframe = { header: this.#videoHeader, frame: tag.body };
      }
      out.writeVideo(timestamp, tag.body);
    }
    this.#lastTimestamp[kind] = timestamp;
    this.#checkBacklog(rtmp);
  }

  /** Output size of transcoded video, from the SPS in its decoder configuration record. */
  #sizeFromConfiguration(record: Buffer): void {
    if (record.length < 8) return;
    const length = record.readUInt16BE(6);
    if (record.length >= 8 + length) this.#updateSize(record.subarray(8, 8 + length));
  }

  /** Waits until the publisher caches a keyframe to start from (it asks the sender for one). */
  async #awaitKeyframe(): Promise<void> {
    const publisher = this.publisher;
    if (publisher.hasKeyframe) return;
    await new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => finish(new Error('no keyframe arrived from the publisher')), this.settings.startTimeoutMs);
      const onKeyframe = (): void => {
        if (publisher.hasKeyframe) finish();
      };
      publisher.on('keyframe', onKeyframe);
      function finish(error?: Error): void {
        clearTimeout(timeout);
        publisher.off('keyframe', onKeyframe);
        if (error) reject(error);
        else resolve();
      }
    });
  }

  /** `promise`, or an error saying `what` once the start-up timeout has passed. */
  async #withinStartTimeout<T>(promise: Promise<T> | undefined, what: string): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${this.settings.startTimeoutMs} ms`)), this.settings.startTimeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Forwarding starts only once ffmpeg listens: a packet sent earlier would be lost. */
  async #awaitPortBound(pipe: Pipeline, port: number): Promise<void> {
    const deadline = Date.now() + this.settings.startTimeoutMs;
    while (!(await udpPortBound(port))) {
      if (!this.#opening) return;
      if (pipe.ffmpeg.exitCode !== undefined) throw new Error(this.#exitReason(pipe, pipe.ffmpeg.exitCode, null));
      if (Date.now() > deadline) throw new Error('ffmpeg did not open its RTP input in time');
      await new Promise((r) => setTimeout(r, PORT_POLL_MS));
    }
  }

  #onLine(pipe: Pipeline, line: string): void {
    pipe.lines.push(line);
    if (pipe.lines.length > KEPT_LOG_LINES) pipe.lines.shift();
    this.log.debug({ ffmpeg: line });
  }

  #exitReason(pipe: Pipeline, code: number | null, signal: NodeJS.Signals | null): string {
    const errors = pipe.lines.filter((l) => /\[(error|fatal)\]/.test(l)).map((l) => l.replace(/^.*\[(error|fatal)\]\s*/, ''));
    if (errors.length) return `ffmpeg exited (${signal ?? `code ${code}`}): ${errors.slice(-3).join('; ')}`;
    if (signal) return `ffmpeg was ended by ${signal}`;
    return `ffmpeg exited (code ${code})${pipe.lines.length ? `: ${pipe.lines.at(-1)!.trim()}` : ''}`;
  }

  #onExit(pipe: Pipeline, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#pending === pipe) this.#takeOver(pipe); // and is lost at once, below
    if (this.#pipe !== pipe) return;
    this.#losePipeline(pipe, this.#exitReason(pipe, code, signal));
  }

  #fail(reason: string, kind: FailureKind): void {
    if (!TRANSITIONS[this.state].includes('failed')) return;
    this.lastError = reason;
    this.#failure = kind;
    this.#transition('failed');
    this.log.warn({ reason }, 'transponder failed');
    this.#settle();
    void this.#release();
  }

  #transition(next: TransponderState): void {
    if (!TRANSITIONS[this.state].includes(next)) throw new Error(`transponder cannot go from ${this.state} to ${next}`);
    this.state = next;
    this.safeEmit('state', next);
  }

  /**
   * Ends the publish and ffmpeg and releases everything; a failed transponder keeps its `failed`
   * state and `lastError`. Idempotent; resolves when all is released.
   */
  stop(): Promise<void> {
    this.#closing ??= (async () => {
      if (TRANSITIONS[this.state].includes('stopping')) this.#transition('stopping');
      this.#settle();
      await this.#release();
      if (this.state === 'stopping') this.#transition('stopped');
      this.log.info({ state: this.state }, 'transponder closed');
      this.safeEmit('closed');
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  #release(): Promise<void> {
    this.#releasing ??= (async () => {
      clearTimeout(this.#retryTimer);
      this.publisher.detach(this);
      await Promise.all([this.#dropLink(), this.#dropPipeline(), this.stopSound()]);
    })();
    return this.#releasing;
  }

  /** The Web Call Server shape, plus `state`, `lastError`, restore attempts and counters. Holds no secret. */
  toJSON(): Record<string, unknown> {
    return {
      mediaSessionId: this.mediaSessionId,
      streamName: this.destination.redactedStreamName,
      sourceStreamName: this.publisher.name,
      rtmpUrl: this.destination.redactedRequestedUrl,
      width: this.outputSize?.width ?? 0,
      height: this.outputSize?.height ?? 0,
      muted: this.muted,
      soundEnabled: this.soundEnabled,
      options: this.request.options,
      state: this.state,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.errorCode ? { errorCode: this.errorCode } : {}),
      ...(this.#standbyUntil !== undefined ? { standbyUntil: new Date(this.#standbyUntil).toISOString() } : {}),
      // Attempts of the current outage, shown as 0 once output has been healthy for a minute.
      reconnectAttempt: this.#up && Date.now() - this.#upSince >= HEALTHY_RESET_MS ? 0 : this.#policy.attempt,
      ...(this.settings.outBuffer.enabled
        ? { outputBuffer: { state: this.#buffer?.state, levelMs: this.#buffer?.levelMs ?? 0, bufferings: this.#pastOutput.bufferings + (this.#buffer?.bufferings ?? 0) } }
        : {}),
      transcoding: this.plan.video === 'transcode',
      createdAt: new Date(this.createdAt).toISOString(),
      counters: {
        ...this.counters,
        framesLost: this.#pastOutput.framesLost + (this.#depacketizer?.framesLost ?? 0),
        framesDropped: this.#pastOutput.framesDropped + (this.#guard?.framesDropped ?? 0),
        lagMs: Math.round(this.#guard?.lagMs ?? 0),
        outputBytes: this.#pastOutput.written + (this.#rtmp?.bytesWritten ?? 0),
        acknowledgedBytes: this.#pastOutput.acknowledged + (this.#rtmp?.bytesAcknowledged ?? 0),
      },
    };
  }
}
