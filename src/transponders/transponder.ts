import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { SecureContext } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TypedEmitter } from '../events.js';
import { avcFrame, avcSequenceHeader, FlvReader, FlvTagType, type FlvTag } from '../media/flv.js';
import { avcDecoderConfiguration, H264Depacketizer, parameterSets, spsPictureSize, type AccessUnit } from '../media/h264.js';
import { RTP_HEADER_SIZE } from '../media/rtp.js';
import type { MediaSink, Publisher } from '../publishers/publisher.js';
import type { CachedPacket } from '../publishers/start-cache.js';
import { decodeAmf0, type Amf0Value } from '../rtmp/amf0.js';
import { RtmpPublisher } from '../rtmp/client.js';
import { scrubDestination, type Destination } from './destination.js';
import type { EncodingPlan, EncodingSettings } from './encoding.js';
import { AudioMixer, PCM_SAMPLE_RATE } from './audio-mixer.js';
import { buildFfmpegArgs, buildInputSdp } from './ffmpeg-args.js';
import { FfmpegProcess } from './ffmpeg-process.js';
import type { SoundPlayer } from './sound.js';
import { reservePorts, udpPortBound } from './udp-ports.js';

export type TransponderState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Allowed state changes; anything else is a bug and is refused loudly. */
const TRANSITIONS: Record<TransponderState, readonly TransponderState[]> = {
  starting: ['running', 'stopping', 'failed'],
  running: ['stopping', 'failed'],
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
  resolveHost: (host: string) => Promise<string>;
}

export interface TransponderOptions {
  /** Startup options as the request gave them (`options` in Web Call Server's API). */
  options: object;
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
/** PCM ffmpeg has not read beyond this (~10 s) means it no longer keeps up. */
const MAX_PCM_BACKLOG_BYTES = 10 * PCM_SAMPLE_RATE * 4;

/**
 * One (stream, destination) pair. The gateway publishes to the destination over its own RTMP
 * connection: H.264 is passed through by the gateway itself (depacketized, written as FLV tags the
 * moment a frame is complete). Audio is decoded and mixed in the gateway (mute, sound files) and
 * written to ffmpeg as PCM; ffmpeg encodes it to AAC, transcodes video when needed (fed the
 * publisher's RTP over loopback UDP) and hands its FLV tags back on stdout. Every output timestamp is
 * on the publisher's clock, mapped by the gateway, so the tracks stay in sync.
 */
export class Transponder extends TypedEmitter<TransponderEvents> implements MediaSink {
  readonly mediaSessionId = randomUUID();
  readonly createdAt = Date.now();
  state: TransponderState = 'starting';
  lastError: string | undefined;
  outputSize: { width: number; height: number } | undefined;
  readonly counters = { packetsSent: 0, bytesSent: 0, frames: 0 };
  muted = false;
  soundEnabled = false;

  #rtmp: RtmpPublisher | undefined;
  #ffmpeg: FfmpegProcess | undefined;
  #ffmpegOutput: Promise<void> | undefined;
  #socket: Socket | undefined;
  #videoPort: number | undefined;
  #mixer: AudioMixer | undefined;
  #sound: SoundPlayer | undefined;
  #depacketizer: H264Depacketizer | undefined;
  readonly #flv = new FlvReader();
  #workDir: string | undefined;
  #recentLines: string[] = [];
  /** Publisher clock (ms) of RTMP timestamp 0: the first tag sent. */
  #baseMs: number | undefined;
  /** Publisher clock (ms) of the first video packet ffmpeg was given: its video output's time 0. */
  #videoStartMs: number | undefined;
  #lastTimestamp = { audio: 0, video: 0 };
  #sps: Buffer | undefined;
  #pps: Buffer | undefined;
  #settled: Promise<void>;
  #settle!: () => void;
  #closing: Promise<void> | undefined;
  #releasing: Promise<void> | undefined;

  constructor(
    readonly publisher: Publisher,
    readonly destination: Destination,
    readonly plan: EncodingPlan,
    readonly request: TransponderOptions,
    private readonly settings: TransponderSettings,
    private readonly log: Logger,
  ) {
    super((event, error) => log.error({ err: error, event }, 'transponder listener failed'));
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
  }

  /** Resolves once the transponder is running, has failed, or is being stopped. */
  get ready(): Promise<void> {
    return this.#settled;
  }

  /** Starting or running: audio commands apply. */
  get isActive(): boolean {
    return this.state === 'starting' || this.state === 'running';
  }

  /** Whether ffmpeg carries the video (transcoding) rather than the gateway (passthrough). */
  get #videoInFfmpeg(): boolean {
    return this.publisher.videoCodec !== undefined && this.plan.video === 'transcode';
  }

  /** Starts the pipeline in the background; `ready` tells when it is up. */
  start(): void {
    this.#run().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error)));
  }

  async #run(): Promise<void> {
    const { publisher } = this;
    if (publisher.videoCodec) await this.#awaitKeyframe();
    if (this.state !== 'starting') return;
    // The destination handshake and ffmpeg's start-up run side by side.
    const [connected, ...local] = await Promise.allSettled([this.#connect(), this.#startFfmpeg(), this.#startMixer()]);
    const failed = local.find((result) => result.status === 'rejected');
    if (connected.status === 'rejected' || failed || this.state !== 'starting') {
      if (connected.status === 'fulfilled') await connected.value.close();
      if (connected.status === 'rejected') throw connected.reason;
      if (failed) throw failed.reason;
      return;
    }
    const rtmp = connected.value;
    this.#rtmp = rtmp;
    rtmp.on('closed', (error) => {
      if (error) this.#fail(`destination connection lost: ${scrubDestination(error.message, this.destination)}`);
    });
    if (publisher.videoCodec && !this.#videoInFfmpeg) {
      this.#depacketizer = new H264Depacketizer((unit) => this.#writeVideoUnit(unit), {
        maxWaitMs: REORDER_WAIT_MS,
        onLoss: () => publisher.requestKeyframe(),
      });
    }
    publisher.attach(this, publisher.hasKeyframe);
    // With no packet yet (an audio-only publisher that is silent), the audio timeline starts now.
    this.#mixer?.begin(Date.now());
    await this.#withinStartTimeout(this.#ffmpegOutput, 'ffmpeg wrote no output');
    if (this.state !== 'starting') return;
    this.#transition('running');
    this.log.info({ size: this.outputSize, plan: this.plan.video }, 'publishing to the destination');
    this.#settle();
  }

  async #connect(): Promise<RtmpPublisher> {
    const { destination, settings } = this;
    const address = await settings.resolveHost(destination.host);
    try {
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
      });
    } catch (error) {
      throw new Error(`could not publish to the destination: ${scrubDestination((error as Error).message, this.destination)}`);
    }
  }

  async #startMixer(): Promise<void> {
    const mixer = await AudioMixer.create({ write: (pcm) => this.#writePcm(pcm) });
    if (this.state !== 'starting') {
      mixer.close();
      return;
    }
    mixer.muted = this.muted;
    mixer.source = this.#sound;
    this.#mixer = mixer;
  }

  async #startFfmpeg(): Promise<void> {
    const { publisher, settings } = this;
    let videoSdpPath: string | undefined;
    if (this.#videoInFfmpeg) {
      this.#videoPort = await reservePorts(settings.rtpPortRange, 2);
      this.#workDir = await mkdtemp(join(tmpdir(), 'transponder-'));
      videoSdpPath = join(this.#workDir, 'input.sdp');
      const sdp = buildInputSdp({ codec: publisher.videoCodec!, port: this.#videoPort, spropParameterSets: publisher.spropParameterSets });
      await writeFile(videoSdpPath, sdp, { mode: 0o600 });
      if (this.state !== 'starting') return;
    }
    const args = buildFfmpegArgs({ videoSdpPath, plan: this.plan, settings: settings.encoding, analyzeDurationUs: settings.analyzeDurationUs });
    const ffmpeg = new FfmpegProcess(settings.ffmpegPath, args);
    this.#ffmpeg = ffmpeg;
    this.#ffmpegOutput = new Promise((resolve) => ffmpeg.once('output', () => resolve()));
    ffmpeg.on('line', (line) => this.#onLine(line));
    ffmpeg.on('output', (data) => this.#onFfmpegOutput(data));
    ffmpeg.on('exit', (code, signal) => this.#onExit(code, signal));
    this.log.info({ pid: ffmpeg.pid, plan: this.plan.video }, 'ffmpeg started');
    if (this.#videoPort === undefined) return;
    await this.#awaitPortBound(this.#videoPort);
    this.#socket = createSocket('udp4');
    this.#socket.on('error', (error) => this.log.warn({ err: error }, 'RTP socket error'));
  }

  write(packet: CachedPacket): void {
    const { kind, wallclockMs } = packet;
    this.counters.packetsSent++;
    this.counters.bytesSent += RTP_HEADER_SIZE + packet.payload.length;
    this.#mixer?.begin(wallclockMs); // the audio timeline starts with the first packet of either kind
    if (kind === 'audio') {
      this.#mixer?.push(packet.payload, wallclockMs);
    } else if (this.#depacketizer) {
      this.#depacketizer.push(packet);
    } else if (this.#socket && this.#videoPort !== undefined) {
      this.#videoStartMs ??= wallclockMs;
      this.#socket.send(this.publisher.videoRtp(packet), this.#videoPort, '127.0.0.1');
    }
  }

  #writePcm(pcm: Buffer): void {
    const ffmpeg = this.#ffmpeg;
    if (!ffmpeg?.write(pcm)) return;
    if (ffmpeg.inputBacklog > MAX_PCM_BACKLOG_BYTES) this.#fail('ffmpeg does not keep up with the audio');
  }

  /** Mutes or unmutes the publisher's audio in this output (a sound being played goes on). */
  setMuted(muted: boolean): void {
    this.muted = muted;
    if (this.#mixer) this.#mixer.muted = muted;
  }

  /** Plays `player` into the output, replacing any sound playing; it ends by itself unless looping. */
  playSound(player: SoundPlayer): void {
    const previous = this.#sound;
    this.#sound = player;
    this.soundEnabled = true;
    if (this.#mixer) this.#mixer.source = player;
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
    if (this.#mixer) this.#mixer.source = undefined;
    await player?.stop();
  }

  /** RTMP timestamp of a moment on the publisher's clock; the first media written is time 0. */
  #timestamp(wallclockMs: number): number {
    this.#baseMs ??= wallclockMs;
    return Math.round(wallclockMs - this.#baseMs);
  }

  #writeVideoUnit(unit: AccessUnit): void {
    const rtmp = this.#rtmp;
    const wallclockMs = this.publisher.wallclockMs('video', unit.timestamp);
    if (!rtmp || wallclockMs === undefined) return;
    const timestamp = Math.max(this.#lastTimestamp.video, this.#timestamp(wallclockMs));
    const { sps, pps } = parameterSets(unit);
    if (sps && pps && !(this.#sps?.equals(sps) && this.#pps?.equals(pps))) {
      this.#sps = sps;
      this.#pps = pps;
      this.#updateSize(sps);
      if (this.counters.frames === 0 && this.settings.sendMetadata) rtmp.writeMetadata(this.#metadata());
      rtmp.writeVideo(timestamp, avcSequenceHeader(avcDecoderConfiguration(sps, pps)));
    }
    if (!this.#sps) return; // no decoder configuration yet: nothing decodable to send
    rtmp.writeVideo(timestamp, avcFrame(unit));
    this.#lastTimestamp.video = timestamp;
    this.counters.frames++;
    this.#checkBacklog(rtmp);
  }

  /** A destination that takes less than it is sent would make the gateway buffer without end. */
  #checkBacklog(rtmp: RtmpPublisher): void {
    if (rtmp.bufferedBytes > MAX_BACKLOG_BYTES) {
      this.#fail(`the destination does not keep up: ${Math.round(rtmp.bufferedBytes / 1048576)} MB waiting to be sent`);
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

  #onFfmpegOutput(data: Buffer): void {
    let tags: FlvTag[];
    try {
      tags = this.#flv.push(data);
    } catch (error) {
      this.#fail(`ffmpeg wrote unreadable output: ${(error as Error).message}`);
      return;
    }
    for (const tag of tags) this.#forwardTag(tag);
  }

  /**
   * Forwards a tag from ffmpeg, its time mapped onto the publisher's clock: ffmpeg's audio time 0 is
   * the mixer's first sample, its video time 0 the first video packet it was given.
   */
  #forwardTag(tag: FlvTag): void {
    const rtmp = this.#rtmp;
    if (!rtmp) return;
    if (tag.type === FlvTagType.SCRIPT) {
      // Passing video through, ffmpeg describes only the audio: the gateway's own onMetaData stands.
      if (!this.#videoInFfmpeg || !this.settings.sendMetadata) return;
      const [, metadata] = decodeAmf0(tag.body);
      if (metadata && typeof metadata === 'object') rtmp.writeMetadata({ ...(metadata as Record<string, Amf0Value>), encoder: 'webrtc-rtmp-gateway' });
      return;
    }
    const kind = tag.type === FlvTagType.VIDEO ? 'video' : tag.type === FlvTagType.AUDIO ? 'audio' : undefined;
    if (!kind) return;
    const sequenceHeader = tag.body[1] === 0;
    const start = kind === 'audio' ? this.#mixer?.startMs : this.#videoStartMs;
    if (start === undefined) return;
    // ffmpeg starts each input at time 0; AAC's 1024 priming samples are moved to time 0 in FLV.
    const primingMs = kind === 'audio' ? (1024 / this.settings.encoding.audioSampleRate) * 1000 : 0;
    let timestamp = this.#timestamp(start + tag.timestamp - primingMs);
    if (timestamp < 0 && !sequenceHeader) return; // the encoder's priming
    timestamp = Math.max(this.#lastTimestamp[kind], timestamp);
    if (kind === 'audio') rtmp.writeAudio(timestamp, tag.body);
    else {
      if (sequenceHeader) this.#sizeFromConfiguration(tag.body.subarray(5));
      else this.counters.frames++;
      rtmp.writeVideo(timestamp, tag.body);
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
  async #awaitPortBound(port: number): Promise<void> {
    const deadline = Date.now() + this.settings.startTimeoutMs;
    while (!(await udpPortBound(port))) {
      if (this.state !== 'starting') return;
      if (Date.now() > deadline) throw new Error('ffmpeg did not open its RTP input in time');
      await new Promise((r) => setTimeout(r, PORT_POLL_MS));
    }
  }

  #onLine(line: string): void {
    this.#recentLines.push(line);
    if (this.#recentLines.length > KEPT_LOG_LINES) this.#recentLines.shift();
    this.log.debug({ ffmpeg: line });
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const errors = this.#recentLines.filter((l) => /\[(error|fatal)\]/.test(l)).map((l) => l.replace(/^.*\[(error|fatal)\]\s*/, ''));
    const reason = errors.slice(-3).join('; ') || this.#recentLines.at(-1) || 'ffmpeg ended';
    this.#fail(`ffmpeg exited (${signal ?? `code ${code}`}): ${reason}`);
  }

  #fail(reason: string): void {
    if (!TRANSITIONS[this.state].includes('failed')) return;
    this.lastError = reason;
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
      this.publisher.detach(this);
      this.#mixer?.close();
      await Promise.all([this.#rtmp?.close(), this.#ffmpeg?.stop(this.settings.stopTimeoutMs), this.stopSound()]);
      this.#socket?.close();
      this.#socket = undefined;
      if (this.#workDir) await rm(this.#workDir, { recursive: true, force: true });
    })();
    return this.#releasing;
  }

  /** The Web Call Server shape, plus `state`, `lastError` and counters. Holds no secret. */
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
      transcoding: this.plan.video === 'transcode',
      createdAt: new Date(this.createdAt).toISOString(),
      counters: {
        ...this.counters,
        framesLost: this.#depacketizer?.framesLost ?? 0,
        outputBytes: this.#rtmp?.bytesWritten ?? 0,
        acknowledgedBytes: this.#rtmp?.bytesAcknowledged ?? 0,
      },
    };
  }
}
