import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { TypedEmitter } from '../events.js';
import type { IngestSession, IngestTrack } from '../ingest/engine.js';
import {
  FFMPEG_PAYLOAD_TYPE,
  h264ParameterSets,
  isKeyframeStart,
  type MediaKind,
  type VideoCodec,
} from '../media/codecs.js';
import { ClockMapping, DuplicateFilter, serializeRtp, serializeSenderReport, type MediaPacket } from '../media/rtp.js';

/** Receives a publisher's media, normalised: fixed payload types and SSRCs, no header extensions. */
export interface MediaSink {
  write(kind: MediaKind, rtp: Buffer, timestamp: number): void;
}

export type PublisherState = 'connecting' | 'publishing' | 'closed';

export type PublisherEvents = {
  publishing: [];
  keyframe: [];
  closed: [reason: string];
};

export interface PublisherOptions {
  keyframeIntervalMs: number;
  log: Logger;
}

/**
 * Upper bound of the cached group of pictures, in packets (~5 s of 720p at 2.5 Mb/s). A GOP larger
 * than this is not cached: a new transponder then waits for the next keyframe instead.
 */
const MAX_GOP_PACKETS = 3000;

/**
 * Keyframes are requested once this fraction of the interval has passed, in capture time, since
 * the last one: the keyframe lands on the next captured frame after the request, up to a frame
 * later, and the gap must not exceed the interval. Capture time rather than arrival, because the
 * stream's first keyframe can reach us long after it was captured.
 */
const KEYFRAME_REQUEST_LEAD = 0.9;
/** A request that brought no keyframe is repeated after this long (Chromium can miss one PLI). */
const KEYFRAME_RETRY_MS = 300;
const KEYFRAME_CHECK_MS = 100;
/** Audio kept to start a new sink in step with the cached keyframe's capture time. */
const AUDIO_HISTORY_MS = 4000;

interface TrackPipeline {
  kind: MediaKind;
  track: IngestTrack;
  payloadType: number;
  ssrc: number;
  filter: DuplicateFilter;
  clock?: ClockMapping;
}

interface CachedPacket {
  kind: MediaKind;
  rtp: Buffer;
  timestamp: number;
}

interface RecentAudio extends CachedPacket {
  /** Capture time on the publisher's clock (ms). */
  wallclockMs: number;
  /** Arrival order among all packets. */
  arrival: number;
}

/**
 * One published stream: owns its ingest session, normalises its packets, keeps the current group
 * of pictures so that a new transponder starts from a keyframe at once, and asks the sender for a
 * keyframe every `keyframeIntervalMs` so passed-through H.264 meets the platforms' 2 s GOP advice.
 */
export class Publisher extends TypedEmitter<PublisherEvents> {
  state: PublisherState = 'connecting';
  readonly createdAt = Date.now();
  readonly videoCodec: VideoCodec | undefined;
  readonly hasAudio: boolean;
  readonly counters = { packets: 0, bytes: 0, duplicates: 0, keyframes: 0 };

  readonly #pipelines = new Map<MediaKind, TrackPipeline>();
  readonly #sinks = new Set<MediaSink>();
  #gop: CachedPacket[] = [];
  #gopTimestamp: number | undefined;
  /** The frame before the cached keyframe: see `attach`. */
  #leadIn: CachedPacket[] = [];
  #frame: CachedPacket[] = [];
  #frameIsKey = false;
  #previousFrame: CachedPacket[] = [];
  #previousFrameIsKey = false;
  /** Capture time of the cached keyframe and the arrival count when it came. */
  #gopStart = { wallclockMs: 0, arrival: 0 };
  #recentAudio: RecentAudio[] = [];
  #arrivals = 0;
  #latestVideoCaptureMs = 0;
  #lastRequestAt = 0;
  #sps: Buffer | undefined;
  #pps: Buffer | undefined;
  #keyframeTimer: NodeJS.Timeout | undefined;
  #unsubscribers: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly session: IngestSession,
    private readonly options: PublisherOptions,
  ) {
    super((event, error) => options.log.error({ err: error, event }, 'publisher listener failed'));
    this.videoCodec = session.videoCodec;
    this.hasAudio = session.hasAudio;
    for (const track of session.tracks) {
      const payloadType = track.kind === 'video' ? FFMPEG_PAYLOAD_TYPE[track.videoCodec ?? 'H264'] : FFMPEG_PAYLOAD_TYPE.opus;
      const pipeline: TrackPipeline = { kind: track.kind, track, payloadType, ssrc: randomInt(1, 2 ** 31), filter: new DuplicateFilter() };
      this.#pipelines.set(track.kind, pipeline);
      this.#unsubscribers.push(track.onPacket((packet) => this.#onPacket(pipeline, packet)));
    }
    session.on('connected', () => {
      if (this.state !== 'connecting') return;
      this.state = 'publishing';
      options.log.info({ video: this.videoCodec, audio: this.hasAudio }, 'publishing');
      this.safeEmit('publishing');
    });
    session.on('closed', (reason) => void this.close(reason));
  }

  get id(): string {
    return this.session.id;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** H.264 SPS and PPS as an SDP `sprop-parameter-sets` value, once seen. */
  get spropParameterSets(): string | undefined {
    if (!this.#sps || !this.#pps) return undefined;
    return `${this.#sps.toString('base64')},${this.#pps.toString('base64')}`;
  }

  /**
   * Whether a keyframe, the (non-key) frame before it and what followed are cached, to start a new
   * sink from. Until then keyframes are requested every KEYFRAME_RETRY_MS.
   */
  get hasKeyframe(): boolean {
    return this.#gopTimestamp !== undefined && this.#leadIn.length > 0;
  }

  #requestKeyframe(): void {
    this.#lastRequestAt = Date.now();
    this.#pipelines.get('video')?.track.requestKeyframe();
  }

  /**
   * Adds a sink. With `fromKeyframe`, the cached packets since the last keyframe are written to it
   * first, in the same tick, so it sees a gapless stream that starts with a keyframe.
   */
  attach(sink: MediaSink, fromKeyframe: boolean): void {
    if (fromKeyframe) {
      // ffmpeg (5.1) gives the first frame it parses from an RTP input no timestamp and then
      // guesses one that can collide with the next frame's. The frame before the keyframe goes
      // first to take that place: ffmpeg drops it, as a stream copy starts at a keyframe.
      for (const p of this.#leadIn) sink.write(p.kind, p.rtp, p.timestamp);
      // Audio captured after the keyframe but received before it (video is encoded and sent
      // later than audio) goes first, so the new sink's audio starts with its video.
      for (const a of this.#recentAudio) {
        if (a.arrival < this.#gopStart.arrival && a.wallclockMs >= this.#gopStart.wallclockMs) sink.write(a.kind, a.rtp, a.timestamp);
      }
      for (const p of this.#gop) sink.write(p.kind, p.rtp, p.timestamp);
    }
    this.#sinks.add(sink);
  }

  detach(sink: MediaSink): void {
    this.#sinks.delete(sink);
  }

  /**
   * An RTCP sender report for the track, mapping `timestamp` onto the publisher's shared clock.
   * Sent to ffmpeg before a track's first packet, it makes ffmpeg place audio and video on one
   * timeline instead of starting each at zero from its own first packet.
   */
  senderReport(kind: MediaKind, timestamp: number): Buffer | undefined {
    const pipeline = this.#pipelines.get(kind);
    if (!pipeline?.clock) return undefined;
    return serializeSenderReport(pipeline.ssrc, pipeline.clock.wallclockMs(timestamp), timestamp);
  }

  async close(reason = 'closed by the gateway'): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.#keyframeTimer);
    for (const unsubscribe of this.#unsubscribers) unsubscribe();
    this.#sinks.clear();
    this.#gop = [];
    this.#leadIn = this.#frame = this.#previousFrame = [];
    this.#recentAudio = [];
    this.options.log.info({ reason }, 'publisher closed');
    await this.session.close(reason);
    this.safeEmit('closed', reason);
    this.removeAllListeners();
  }

  #onPacket(pipeline: TrackPipeline, packet: MediaPacket): void {
    if (!pipeline.filter.accept(packet.sequenceNumber)) {
      this.counters.duplicates++;
      return;
    }
    this.counters.packets++;
    this.counters.bytes += packet.payload.length;
    const clock = (pipeline.clock ??= new ClockMapping(pipeline.track.clockRate, packet.timestamp, Date.now()));
    const rtp = serializeRtp(packet, pipeline.payloadType, pipeline.ssrc);
    const arrival = ++this.#arrivals;
    if (pipeline.kind === 'video') this.#onVideo(packet, rtp, clock, arrival);
    else if (this.videoCodec) this.#rememberAudio(rtp, packet.timestamp, clock.wallclockMs(packet.timestamp), arrival);
    if (this.#gopTimestamp !== undefined) {
      this.#gop.push({ kind: pipeline.kind, rtp, timestamp: packet.timestamp });
      if (this.#gop.length > MAX_GOP_PACKETS) {
        this.#gop = [];
        this.#gopTimestamp = undefined;
      }
    }
    for (const sink of this.#sinks) sink.write(pipeline.kind, rtp, packet.timestamp);
  }

  #onVideo(packet: MediaPacket, rtp: Buffer, clock: ClockMapping, arrival: number): void {
    this.#keyframeTimer ??= this.#startKeyframeRequests();
    this.#latestVideoCaptureMs = Math.max(this.#latestVideoCaptureMs, clock.wallclockMs(packet.timestamp));
    const codec = this.videoCodec;
    const keyStart = codec !== undefined && isKeyframeStart(codec, packet.payload);
    this.#trackFrames(rtp, packet.timestamp, keyStart);
    if (!keyStart) return;
    if (codec === 'H264') this.#captureParameterSets(packet.payload);
    if (packet.timestamp === this.#gopTimestamp) return; // another packet of the same keyframe
    this.#gop = [];
    this.#gopTimestamp = packet.timestamp;
    this.#leadIn = this.#previousFrameIsKey ? [] : this.#previousFrame;
    this.#gopStart = { wallclockMs: clock.wallclockMs(packet.timestamp), arrival };
    this.counters.keyframes++;
    this.safeEmit('keyframe');
  }

  /** Keeps the packets of the current and the previous video frame. */
  #trackFrames(rtp: Buffer, timestamp: number, keyStart: boolean): void {
    if (this.#frame[0] && this.#frame[0].timestamp !== timestamp) {
      this.#previousFrame = this.#frame;
      this.#previousFrameIsKey = this.#frameIsKey;
      this.#frame = [];
      this.#frameIsKey = false;
    }
    this.#frame.push({ kind: 'video', rtp, timestamp });
    if (keyStart) this.#frameIsKey = true;
  }

  /**
   * Asks for a keyframe whenever the last one is getting old, and until one usable to start a sink
   * from is cached. The stream's first frame is a keyframe with no frame before it: the next one,
   * asked for at the first check, is the one new transponders start from.
   */
  #startKeyframeRequests(): NodeJS.Timeout {
    const due = this.options.keyframeIntervalMs * KEYFRAME_REQUEST_LEAD;
    return setInterval(() => {
      const age = this.hasKeyframe ? this.#latestVideoCaptureMs - this.#gopStart.wallclockMs : Infinity;
      if (age >= due && Date.now() - this.#lastRequestAt >= KEYFRAME_RETRY_MS) this.#requestKeyframe();
    }, KEYFRAME_CHECK_MS);
  }

  #rememberAudio(rtp: Buffer, timestamp: number, wallclockMs: number, arrival: number): void {
    const recent = this.#recentAudio;
    recent.push({ kind: 'audio', rtp, timestamp, wallclockMs, arrival });
    while (recent.length > 0 && recent[0]!.wallclockMs < wallclockMs - AUDIO_HISTORY_MS) recent.shift();
  }

  #captureParameterSets(payload: Buffer): void {
    const { sps, pps } = h264ParameterSets(payload);
    if (sps) this.#sps = sps;
    if (pps) this.#pps = pps;
  }
}
