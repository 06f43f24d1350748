import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TypedEmitter } from '../events.js';
import type { MediaKind } from '../media/codecs.js';
import type { MediaSink, Publisher } from '../publishers/publisher.js';
import { scrubDestination, type Destination } from './destination.js';
import type { EncodingPlan, EncodingSettings } from './encoding.js';
import { buildFfmpegArgs, buildInputSdp, type RtpInput } from './ffmpeg-args.js';
import { FfmpegProcess } from './ffmpeg-process.js';
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
  encoding: EncodingSettings;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  rtpPortRange: [number, number];
  analyzeDurationUs: number;
  ioTimeoutUs: number;
}

export interface TransponderOptions {
  /** Startup options as the request gave them (`options` in Web Call Server's API). */
  options: Record<string, unknown>;
}

export type TransponderEvents = {
  state: [TransponderState];
  closed: [];
};

const PORT_POLL_MS = 10;
const KEPT_LOG_LINES = 20;

/**
 * One (stream, destination) pair: an ffmpeg process fed with the publisher's RTP over loopback UDP
 * and publishing to one RTMP destination.
 */
export class Transponder extends TypedEmitter<TransponderEvents> implements MediaSink {
  readonly mediaSessionId = randomUUID();
  readonly createdAt = Date.now();
  state: TransponderState = 'starting';
  lastError: string | undefined;
  outputSize: { width: number; height: number } | undefined;
  readonly counters = { packetsSent: 0, bytesSent: 0, frames: 0, outputBytes: 0 };
  muted = false;
  soundEnabled = false;

  #ffmpeg: FfmpegProcess | undefined;
  #socket: Socket | undefined;
  #ports: Partial<Record<MediaKind, number>> = {};
  #reported = new Set<MediaKind>();
  #workDir: string | undefined;
  #recentLines: string[] = [];
  #outputStreamsSeen: number | undefined;
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

  /** Starts the pipeline in the background; `ready` tells when it is up. */
  start(): void {
    this.#run().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error)));
  }

  async #run(): Promise<void> {
    const { publisher, settings } = this;
    if (publisher.videoCodec) await this.#awaitKeyframe();
    if (this.state !== 'starting') return;

    const base = await reservePorts(settings.rtpPortRange, 4);
    const input: RtpInput = {};
    if (publisher.videoCodec) {
      this.#ports.video = base;
      input.video = { codec: publisher.videoCodec, port: base, spropParameterSets: publisher.spropParameterSets };
    }
    if (publisher.hasAudio) {
      this.#ports.audio = base + 2;
      input.audio = { port: base + 2 };
    }
    this.#workDir = await mkdtemp(join(tmpdir(), 'transponder-'));
    const sdpPath = join(this.#workDir, 'input.sdp');
    await writeFile(sdpPath, buildInputSdp(input), { mode: 0o600 });
    if (this.state !== 'starting') {
      await rm(this.#workDir, { recursive: true, force: true }); // released before the folder existed
      return;
    }

    const args = buildFfmpegArgs({
      sdpPath,
      input,
      plan: this.plan,
      settings: settings.encoding,
      outputUrl: this.destination.url,
      analyzeDurationUs: settings.analyzeDurationUs,
      ioTimeoutUs: settings.ioTimeoutUs,
    });
    const ffmpeg = new FfmpegProcess(settings.ffmpegPath, args, (line) => scrubDestination(line, this.destination));
    this.#ffmpeg = ffmpeg;
    ffmpeg.on('line', (line) => this.#onLine(line));
    ffmpeg.on('progress', (p) => {
      this.counters.frames = p.frames;
      this.counters.outputBytes = p.bytes;
    });
    ffmpeg.on('exit', (code, signal) => this.#onExit(code, signal));
    this.log.info({ pid: ffmpeg.pid, plan: this.plan.video }, 'ffmpeg started');

    await this.#awaitPortsBound();
    if (this.state !== 'starting') return;
    this.#socket = createSocket('udp4');
    this.#socket.on('error', (error) => this.log.warn({ err: error }, 'RTP socket error'));
    publisher.attach(this, publisher.hasKeyframe);
  }

  write(kind: MediaKind, rtp: Buffer, timestamp: number): void {
    const port = this.#ports[kind];
    const socket = this.#socket;
    if (port === undefined || !socket) return;
    if (!this.#reported.has(kind)) {
      this.#reported.add(kind);
      const report = this.publisher.senderReport(kind, timestamp);
      if (report) socket.send(report, port, '127.0.0.1');
    }
    socket.send(rtp, port, '127.0.0.1');
    this.counters.packetsSent++;
    this.counters.bytesSent += rtp.length;
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

  /** Forwarding starts only once ffmpeg listens: a keyframe sent earlier would be lost. */
  async #awaitPortsBound(): Promise<void> {
    const deadline = Date.now() + this.settings.startTimeoutMs;
    for (const port of Object.values(this.#ports)) {
      while (!(await udpPortBound(port))) {
        if (this.state !== 'starting') return;
        if (Date.now() > deadline) throw new Error('ffmpeg did not open its RTP input in time');
        await new Promise((r) => setTimeout(r, PORT_POLL_MS));
      }
    }
  }

  #onLine(line: string): void {
    this.#recentLines.push(line);
    if (this.#recentLines.length > KEPT_LOG_LINES) this.#recentLines.shift();
    this.log.debug({ ffmpeg: line });
    if (this.state !== 'starting') return;
    // ffmpeg prints "Output #0, flv, to ..." once the destination accepted the publish, then one
    // "Stream #0:N" line per output stream: running once all of them are described.
    if (/\[info\] Output #0, flv/.test(line)) {
      this.#outputStreamsSeen = 0;
      return;
    }
    if (this.#outputStreamsSeen === undefined) return;
    const stream = /\[info\]\s+Stream #0:\d+: (Video|Audio): (.*)$/.exec(line);
    if (!stream) return;
    const size = stream[1] === 'Video' ? /, (\d{2,5})x(\d{2,5})[ ,]/.exec(stream[2]!) : null;
    if (size) this.outputSize = { width: Number(size[1]), height: Number(size[2]) };
    const expected = Object.keys(this.#ports).length;
    if (++this.#outputStreamsSeen >= expected) {
      this.#transition('running');
      this.log.info({ size: this.outputSize }, 'publishing to the destination');
      this.#settle();
    }
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
   * Stops ffmpeg and releases everything; a failed transponder keeps its `failed` state and
   * `lastError`. Idempotent; resolves when all is released.
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
      // Stop ffmpeg while media still flows: it reads `q` between packets.
      await this.#ffmpeg?.stop(this.settings.stopTimeoutMs);
      this.publisher.detach(this);
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
      counters: { ...this.counters },
    };
  }
}
