import type { Logger } from 'pino';
import { TypedEmitter } from '../events.js';
import type { IngestSession, IngestTrack } from '../ingest/engine.js';
import type { MediaKind, VideoCodec } from '../media/codecs.js';
import { ClockMapping, DuplicateFilter, type MediaPacket } from '../media/rtp.js';
import { OpusStage } from './opus-stage.js';
import { FrameStage, type VideoFrame } from './frames.js';
import { KEYFRAME_CHECK_MS, KeyframeSchedule } from './keyframes.js';
import { StartCache, type AudioPacket, type MediaSink } from './start-cache.js';
import { RateMeter } from './stats.js';

export type { AudioPacket, MediaSink };

export type PublisherState = 'connecting' | 'publishing' | 'closed';

export type PublisherEvents = {
  publishing: [];
  keyframe: [];
  /** `lost`: the publisher went away (connection gone, page closed) rather than ending on purpose. */
  closed: [reason: string, lost: boolean];
};

export interface PublisherOptions {
  keyframeIntervalMs: number;
  /** A publishing stream that sends no RTP for this long is lost (0: never). */
  mediaTimeoutMs?: number;
  log: Logger;
}

/** Frames the frame rate is measured over. */
const FRAME_RATE_WINDOW = 60;

interface TrackPipeline {
  kind: MediaKind;
  track: IngestTrack;
  filter: DuplicateFilter;
  clock?: ClockMapping;
}

/**
 * One published stream: owns its ingest session, normalises its packets, keeps the current group
 * of pictures so that a new push starts from a keyframe at once, and asks the sender for a
 * keyframe every `keyframeIntervalMs` so passed-through H.264 meets the platforms' 2 s GOP advice.
 */
export class Publisher extends TypedEmitter<PublisherEvents> {
  state: PublisherState = 'connecting';
  readonly createdAt = Date.now();
  readonly videoCodec: VideoCodec | undefined;
  readonly hasAudio: boolean;
  readonly counters = { packets: 0, bytes: 0, duplicates: 0, frames: 0, keyframes: 0, keyframeRequests: 0, sinkErrors: 0 };
  /** The address it publishes from (the WHIP request's, the SDK WebSocket's), when told. */
  clientAddress: string | undefined;
  /** When WebRTC connected. */
  publishingSince: number | undefined;
  /** What keeps it from connecting, when the gateway can tell (no ICE check came: `registry.ts`). */
  warning: string | undefined;
  readonly #rate = new RateMeter();
  readonly #rateTimer = setInterval(() => this.#rate.sample(this.counters.bytes), 1000).unref();
  readonly #failedSinks = new WeakSet<MediaSink>();

  readonly #pipelines = new Map<MediaKind, TrackPipeline>();
  readonly #sinks = new Set<MediaSink>();
  /** The keyframe, the frames since and the audio since that a new sink starts from. */
  readonly #startCache = new StartCache();
  /** Video frames for every sink, made once. */
  readonly #frames: FrameStage | undefined;
  /** The Opus decoded once for every sink that asks (`audioPcm`). */
  readonly #opus: OpusStage | undefined;
  readonly #keyframes: KeyframeSchedule;
  /** Capture times of the latest video frames, oldest first, for the frame rate. */
  readonly #frameTimes: number[] = [];
  #keyframeTimer: NodeJS.Timeout | undefined;
  #mediaWatch: NodeJS.Timeout | undefined;
  #unsubscribers: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly session: IngestSession,
    private readonly options: PublisherOptions,
  ) {
    super((event, error) => options.log.error({ err: error, event }, 'publisher listener failed'));
    this.videoCodec = session.videoCodec;
    this.hasAudio = session.hasAudio;
    this.#keyframes = new KeyframeSchedule(
      options.keyframeIntervalMs,
      () => {
        this.counters.keyframeRequests++;
        this.#pipelines.get('video')?.track.requestKeyframe();
      },
      () => this.cachedKeyframeMs,
    );
    if (this.hasAudio) this.#opus = new OpusStage();
    if (this.videoCodec) {
      this.#frames = new FrameStage(
        this.videoCodec,
        (timestamp) => this.wallclockMs('video', timestamp),
        (frame) => this.#onFrame(frame),
        () => {
          this.#startCache.lost();
          this.requestKeyframe();
        },
      );
    }
    for (const track of session.tracks) {
      const pipeline: TrackPipeline = { kind: track.kind, track, filter: new DuplicateFilter() };
      this.#pipelines.set(track.kind, pipeline);
      this.#unsubscribers.push(track.onPacket((packet) => this.#onPacket(pipeline, packet)));
    }
    session.on('connected', () => {
      if (this.state !== 'connecting') return;
      this.state = 'publishing';
      this.publishingSince = Date.now();
      this.#watchMedia();
      options.log.info({ video: this.videoCodec, audio: this.hasAudio }, 'publishing');
      this.safeEmit('publishing');
    });
    session.on('closed', (reason) => void this.close(reason, true));
  }

  /**
   * A publisher whose page was closed or whose network went away says nothing; WebRTC itself
   * notices only when consent expires (30 s). Silence on every track notices it sooner: a browser
   * sends frames even for a muted microphone or a disabled camera.
   */
  #watchMedia(): void {
    const timeoutMs = this.options.mediaTimeoutMs ?? 0;
    if (!timeoutMs) return;
    // Told by the packet count standing still between checks, not by a clock read per packet.
    let packets = this.counters.packets;
    let silentSince = Date.now();
    this.#mediaWatch = setInterval(
      () => {
        const now = Date.now();
        if (this.counters.packets !== packets) {
          packets = this.counters.packets;
          silentSince = now;
        } else if (now - silentSince >= timeoutMs) {
          void this.close(`no media from the publisher for ${Math.round((now - silentSince) / 100) / 10} s`, true);
        }
      },
      Math.min(500, timeoutMs / 4),
    );
  }

  get id(): string {
    return this.session.id;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Whether a new sink can start from a cached keyframe. Until then keyframes are requested every
   * KEYFRAME_RETRY_MS.
   */
  get hasKeyframe(): boolean {
    return this.#startCache.ready;
  }

  /**
   * Asks the sender for a keyframe now (after a loss), unless one was just asked for; with `force`,
   * even then (a sink that was not attached may have missed the keyframe that answered).
   */
  requestKeyframe(force = false): void {
    this.#keyframes.request(force);
  }

  /** Capture time (publisher clock, ms) of the cached keyframe a sink can start from, if any. */
  get cachedKeyframeMs(): number | undefined {
    return this.#startCache.keyframe?.wallclockMs;
  }

  /** Video frames per second over the latest frames, once there are a few. */
  get frameRate(): number | undefined {
    const times = this.#frameTimes;
    if (times.length < 5) return undefined;
    return ((times.length - 1) * 1000) / (times.at(-1)! - times[0]!);
  }

  /** A track's RTP timestamp on the publisher's shared clock, in milliseconds. */
  wallclockMs(kind: MediaKind, timestamp: number): number | undefined {
    return this.#pipelines.get(kind)?.clock?.wallclockMs(timestamp);
  }

  /** An audio packet's samples, interleaved stereo 16-bit at 48 kHz, decoded once for every sink. */
  audioPcm(packet: AudioPacket): Int16Array | undefined {
    return this.#opus?.pcm(packet);
  }

  /** RTP packets of this stream never received, both tracks (retransmitted ones count as received). */
  get packetsLost(): number {
    let lost = 0;
    for (const { filter } of this.#pipelines.values()) lost += filter.lost;
    return lost;
  }

  /**
   * The stream's RTP hop by hop, both tracks: what the engine received from the publisher and lost
   * on the way to it, what it sent on towards the gateway, and what the gateway's frame path
   * received (duplicates included). Undefined when the engine does not count.
   */
  get hops(): { engineReceived: number; engineLost: number; engineSent: number; gatewayReceived: number } | undefined {
    const hops = { engineReceived: 0, engineLost: 0, engineSent: 0, gatewayReceived: this.counters.packets + this.counters.duplicates };
    for (const { track } of this.#pipelines.values()) {
      const counts = track.engineCounts;
      if (!counts) return undefined;
      hops.engineReceived += counts.received;
      hops.engineLost += counts.lost;
      hops.engineSent += counts.sentToGateway;
    }
    return hops;
  }

  /** NACKs sent for this stream's lost packets, both tracks. */
  get nacksSent(): number {
    let sent = 0;
    for (const { track } of this.#pipelines.values()) sent += track.nacksSent ?? 0;
    return sent;
  }

  /** Received RTP (both tracks) over the last second, in kb/s. */
  get bitrateKbps(): number {
    return this.#rate.kbps;
  }

  /** The latest keyframe, while the frames since it are kept. */
  get keyframe(): VideoFrame | undefined {
    return this.#startCache.keyframe;
  }

  /** Frames dropped since the stream began because a packet was lost. */
  get framesLost(): number {
    return this.#frames?.framesLost ?? 0;
  }

  /**
   * Adds a sink. With `fromKeyframe`, the cached keyframe, the frames since and the audio since are
   * written to it first, in the same tick, so it sees a gapless stream that starts with a keyframe.
   * True when it was started so; otherwise its video starts at the next keyframe.
   */
  attach(sink: MediaSink, fromKeyframe: boolean): boolean {
    const started = fromKeyframe && this.#startCache.ready;
    if (started) this.#startCache.replay(sink);
    this.#sinks.add(sink);
    return started;
  }

  detach(sink: MediaSink): void {
    this.#sinks.delete(sink);
  }

  /** Ends the stream; `lost` when the publisher went away rather than ending it on purpose. */
  async close(reason = 'closed by the gateway', lost = false): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.#keyframeTimer);
    clearInterval(this.#mediaWatch);
    clearInterval(this.#rateTimer);
    for (const unsubscribe of this.#unsubscribers) unsubscribe();
    this.#sinks.clear();
    this.#startCache.clear();
    this.#opus?.close();
    this.options.log.info({ reason }, 'publisher closed');
    await this.session.close(reason);
    this.safeEmit('closed', reason, lost);
    this.removeAllListeners();
  }

  /**
   * Video packets go to the frame stage alone: sinks are given whole frames, made once. Audio
   * packets go to every sink as they are, timed on the publisher's clock.
   */
  #onPacket(pipeline: TrackPipeline, packet: MediaPacket): void {
    if (!pipeline.filter.accept(packet.sequenceNumber)) {
      this.counters.duplicates++;
      return;
    }
    this.counters.packets++;
    this.counters.bytes += packet.payload.length;
    const clock = (pipeline.clock ??= new ClockMapping(pipeline.track.clockRate, packet.timestamp, Date.now()));
    if (pipeline.kind === 'video') {
      this.#keyframeTimer ??= this.#startKeyframeRequests();
      this.#frames?.push(packet);
      return;
    }
    const audio: AudioPacket = { payload: packet.payload, wallclockMs: clock.wallclockMs(packet.timestamp) };
    if (this.videoCodec) this.#startCache.addAudio(audio);
    for (const sink of this.#sinks) {
      try {
        sink.audio(audio);
      } catch (error) {
        this.#sinkFailed(sink, error);
      }
    }
  }

  #onFrame(frame: VideoFrame): void {
    const { wallclockMs } = frame;
    this.#frameTimes.push(wallclockMs);
    if (this.#frameTimes.length > FRAME_RATE_WINDOW) this.#frameTimes.shift();
    this.#keyframes.frame(wallclockMs);
    this.#startCache.addFrame(frame);
    this.counters.frames++;
    if (frame.key) {
      this.counters.keyframes++;
      this.#keyframes.keyframe(wallclockMs);
      this.safeEmit('keyframe');
    }
    for (const sink of this.#sinks) {
      try {
        sink.frame(frame);
      } catch (error) {
        this.#sinkFailed(sink, error);
      }
    }
  }

  /** One sink's exception must not keep the media from the others; each broken sink is logged once. */
  #sinkFailed(sink: MediaSink, error: unknown): void {
    this.counters.sinkErrors++;
    if (this.#failedSinks.has(sink)) return;
    this.#failedSinks.add(sink);
    this.options.log.error({ err: error }, 'a media sink threw: the others still get the stream');
  }

  /** Checks whether a keyframe is due, every KEYFRAME_CHECK_MS (see `KeyframeSchedule`). */
  #startKeyframeRequests(): NodeJS.Timeout {
    return setInterval(() => this.#keyframes.check(), KEYFRAME_CHECK_MS);
  }
}
