import { monotonicMs, wallClockMs } from '../core/clock.js';
import type { Logger } from 'pino';
import { TypedEmitter } from '../core/events.js';
import { checkEvery, onTick } from '../core/tick.js';
import type { IngestSession, IngestTrack } from '../ingest/engine.js';
import type { MediaKind, VideoCodec } from '../media/codecs.js';
import type { Depacketizer, PendingFrame, VideoFrame } from '../media/depacketizer.js';
import { H264Depacketizer } from '../media/h264.js';
import { RtpReceiver, StreamStart, type PacketTarget } from '../media/rtp.js';
import { Vp8Depacketizer, Vp9Depacketizer } from '../media/vpx.js';
import { OpusStage } from './opus-stage.js';
import { Fanout, type AudioPacket, type MediaSink } from './fanout.js';
import { KEYFRAME_CHECK_MS, KeyframeSchedule } from './keyframes.js';
import { RateMeter } from './stats.js';
import { LayerSession } from './layers.js';

export type { AudioPacket, MediaSink, VideoFrame };

export type PublisherState = 'connecting' | 'publishing' | 'closed';

export type PublisherEvents = {
  publishing: [];
  /** `lost`: the publisher went away (connection gone, page closed) rather than ending on purpose. */
  closed: [reason: string, lost: boolean];
  /** Simulcast: the layer its video carries changed (0 the lowest; undefined while none comes). */
  layer: [layer: number | undefined];
  /** A message on one of its data channels (`PUBLISHER_CHANNELS`), as text. */
  message: [channel: string, text: string];
};

export interface PublisherOptions {
  keyframeIntervalMs: number;
  /** A publishing stream that sends no RTP for this long is lost (0: never). */
  mediaTimeoutMs?: number;
  /** Simulcast: a layer's publisher that no push holds (`hold`) is let go after this long (ms; 30 s). */
  layerIdleMs?: number;
  /** Whether the machine is out of CPU now (`LoadMonitor.saturated`). */
  saturated?: () => boolean;
  /**
   * How long a track's first packets wait for the least-delayed one to anchor the track's time on
   * (ms; `FIRST_PACKETS_SETTLE_MS`); 0: on the first packet (a test that feeds packets all at once).
   */
  firstPacketsSettleMs?: number;
  log: Logger;
}

/** A simulcast layer's publisher no push holds is let go after this long, by default (ms). */
const LAYER_IDLE_MS = 30_000;

/**
 * A track's first packets wait this long at most for the least-delayed one (ms): a thread busy when
 * they came reads seconds of them at once, and the track is timed from the last of that burst. A
 * burst read slowly (a busy thread) takes a while; a publish on time waits for 60 ms of its media.
 */
const FIRST_PACKETS_SETTLE_MS = 1000;

/** How long the depacketizer waits for a missing video packet (a NACK retransmission). */
const REORDER_WAIT_MS = 100;

interface TrackPipeline {
  kind: MediaKind;
  track: IngestTrack;
  receiver: RtpReceiver;
}

/**
 * One published stream: owns its ingest session and the stages its media passes through, in one
 * direction: each track's `RtpReceiver` (repeats dropped, packets timed), the video's
 * depacketizer (whole frames), and the `Fanout` that gives every sink the same frames and packets
 * and keeps the start cache, so that a new push starts from a keyframe at once. It asks the sender
 * for a keyframe every `keyframeIntervalMs`, so passed-through H.264 meets the platforms' 2 s GOP advice.
 */
export class Publisher extends TypedEmitter<PublisherEvents> {
  state: PublisherState = 'connecting';
  readonly createdAt = wallClockMs();
  readonly videoCodec: VideoCodec | undefined;
  readonly hasAudio: boolean;
  /** The address it publishes from (the WHIP request's, the SDK WebSocket's), when told. */
  clientAddress: string | undefined;
  /** When WebRTC connected. */
  publishingSince: number | undefined;
  /** When WebRTC connected, on the media clock: the stream's media time 0 (captions' `at`). */
  mediaOriginMs: number | undefined;
  /** What keeps it from connecting, when the gateway can tell (no ICE check came: `registry.ts`). */
  warning: string | undefined;
  /** Messages of its data channels refused (malformed, or past their rate). */
  messagesRefused = 0;
  #keyframeRequests = 0;
  readonly #rate = new RateMeter();
  /** Takes its rate sample (every second) off the thread's tick. */
  readonly #untickRate = onTick(() => {
    this.#rate.sample(this.#received('bytes'));
    if (this.#madeLayers.size) this.#releaseIdleLayers();
  }, 1000);
  readonly #pipelines = new Map<MediaKind, TrackPipeline>();
  readonly #fanout: Fanout;
  /** The video's frames, made once for every sink. */
  readonly #depacketizer: Depacketizer<PendingFrame> | undefined;
  /** The Opus decoded once for every sink that asks (`audioPcm`). */
  readonly #opus: OpusStage | undefined;
  readonly #keyframes: KeyframeSchedule;
  /** Takes its keyframe schedule off the thread's tick. */
  #untickKeyframes: (() => void) | undefined;
  /** Stops its media watch. */
  #unwatchMedia: (() => void) | undefined;
  #unsubscribers: (() => void)[] = [];
  /** Simulcast: each layer's publisher's sound input, fed with this stream's timed sound. */
  readonly #audioFollowers = new Set<PacketTarget>();
  /** Simulcast: a publisher of each lower layer a push asked for, made at its first use, let go when no push holds it. */
  readonly #layers = new Map<number, Promise<Publisher>>();
  /** The layers' publishers made, by layer, for the idle check. */
  readonly #madeLayers = new Map<number, Publisher>();
  /** Pushes that take their media from it now (`hold`), and since when none has (monotonic ms). */
  #holders = 0;
  #idleSince = monotonicMs();
  /** The stream's publisher, of which this one is a simulcast layer; itself for the stream's own. */
  readonly origin: Publisher;

  constructor(
    readonly name: string,
    readonly session: IngestSession,
    private readonly options: PublisherOptions,
    origin?: Publisher,
  ) {
    super((event, error) => options.log.error({ err: error, event }, 'publisher listener failed'));
    this.origin = origin ?? this;
    this.videoCodec = session.videoCodec;
    this.hasAudio = session.hasAudio;
    const fanout = (this.#fanout = new Fanout(this.videoCodec !== undefined, options.log));
    this.#keyframes = new KeyframeSchedule(
      options.keyframeIntervalMs,
      () => {
        this.#keyframeRequests++;
        this.#pipelines.get('video')?.track.requestKeyframe();
      },
      fanout,
    );
    if (this.hasAudio) this.#opus = new OpusStage();
    if (this.videoCodec) {
      const Codec =
        this.videoCodec === 'H264' ? H264Depacketizer : this.videoCodec === 'VP8' ? Vp8Depacketizer : Vp9Depacketizer;
      // After a loss, frames resume at the next keyframe: one is asked for, and nothing is started from before it.
      const onLoss = (): void => {
        fanout.lost();
        this.requestKeyframe();
      };
      this.#depacketizer = new Codec(fanout, { maxWaitMs: REORDER_WAIT_MS, onLoss });
    }
    // A local stream's tracks share a start; a publisher's are each timed from their first packet.
    const start = new StreamStart();
    for (const track of session.tracks) {
      // A simulcast layer's sound is its stream's, timed once on the stream's own anchor: every
      // layer's pushes then hold the same sound against the pictures.
      if (track.kind === 'audio' && this.origin !== this) {
        this.#unsubscribers.push(this.origin.#followAudio(fanout.audioInput));
        continue;
      }
      const target = track.kind === 'video' ? this.#depacketizer : this.#audioTee(fanout.audioInput);
      if (!target) continue;
      const pipeline: TrackPipeline = {
        kind: track.kind,
        track,
        receiver: new RtpReceiver(track.clockRate, target, {
          local: track.startMs === undefined ? undefined : { start, startMs: track.startMs },
          settleMs: options.firstPacketsSettleMs ?? FIRST_PACKETS_SETTLE_MS,
          onDiscontinuity: ({ jumpMs }) =>
            options.log.warn(
              { kind: track.kind, jumpMs },
              "the publisher's RTP time jumped: its media goes on from here as a new timeline",
            ),
        }),
      };
      this.#pipelines.set(track.kind, pipeline);
      this.#unsubscribers.push(track.deliverTo(pipeline.receiver));
      track.onLayerChange?.((layer) => {
        options.log.info({ layer, of: track.layers }, 'the simulcast layer forwarded changed');
        this.safeEmit('layer', layer);
      });
    }
    session.on('connected', () => {
      if (this.state !== 'connecting') return;
      this.state = 'publishing';
      this.publishingSince = wallClockMs();
      this.mediaOriginMs = monotonicMs();
      if (this.videoCodec) this.#untickKeyframes = onTick(() => this.#keyframes.check(), KEYFRAME_CHECK_MS);
      this.#watchMedia();
      options.log.info({ video: this.videoCodec, audio: this.hasAudio }, 'publishing');
      this.safeEmit('publishing');
    });
    session.on('closed', (reason) => void this.close(reason, true));
    session.on('message', (channel, text) => this.safeEmit('message', channel, text));
  }

  /**
   * A message of its data channel `channel` was refused: counted, and logged at the 1st, 10th, 100th…
   * (a client that floods its channel fills no log).
   */
  messageRefused(channel: string, reason: string): void {
    const refused = ++this.messagesRefused;
    if (/^10*$/.test(String(refused)))
      this.options.log.warn({ channel, reason, refused }, 'a data channel message was refused');
  }

  /** Simulcast: how many layers its video has, lowest first; 0 for a single stream. */
  get layers(): number {
    return this.#pipelines.get('video')?.track.layers ?? 0;
  }

  /** Simulcast: the layer its video carries now (0 the lowest), undefined while none comes. */
  get currentLayer(): number | undefined {
    return this.#pipelines.get('video')?.track.currentLayer;
  }

  /**
   * Simulcast: a publisher of layer `spatial` alone (its video, the stream's audio), made at its
   * first use, shared by every push of that layer, and ended with this one. The top layer is this
   * publisher's own video.
   */
  layer(spatial: number): Promise<Publisher> {
    if (spatial >= this.layers - 1) return Promise.resolve(this);
    let made = this.#layers.get(spatial);
    if (!made) {
      made = this.#makeLayer(spatial);
      this.#layers.set(spatial, made);
      made.then(
        (layer) => this.#madeLayers.set(spatial, layer),
        () => this.#layers.delete(spatial),
      );
    }
    // Asked for: not idle, whether a push goes on to hold it or only looks at its size.
    const existing = this.#madeLayers.get(spatial);
    if (existing) existing.#touch();
    return made;
  }

  /** Simulcast: the lower layers that have a publisher now (let go when no push holds them). */
  get layersTaken(): number[] {
    return [...this.#madeLayers.keys()].sort();
  }

  /** A push takes its media from this publisher; the function returned says it no longer does (once). */
  hold(): () => void {
    this.#holders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#holders === 0) this.#idleSince = monotonicMs();
    };
  }

  #touch(): void {
    this.#idleSince = monotonicMs();
  }

  /** Lets go of each layer's publisher that no push has held for `layerIdleMs`: its consumer and keyframe requests end. */
  #releaseIdleLayers(): void {
    const idleMs = this.options.layerIdleMs ?? LAYER_IDLE_MS;
    for (const [spatial, layer] of this.#madeLayers) {
      if (layer.#holders > 0 || monotonicMs() - layer.#idleSince < idleMs) continue;
      this.#madeLayers.delete(spatial);
      this.#layers.delete(spatial);
      this.options.log.info({ layer: spatial }, 'no push takes this simulcast layer: it is let go');
      void layer.close('no push takes this simulcast layer');
    }
  }

  async #makeLayer(spatial: number): Promise<Publisher> {
    const track = this.#pipelines.get('video')?.track;
    if (!track?.layer) throw new Error('the stream sends no simulcast layers');
    const video = await track.layer(spatial);
    if (this.isClosed) {
      video.close();
      throw new Error('the stream ended');
    }
    const session = new LayerSession(this.session, video, spatial);
    // The stream's own publisher watches for its media stopping, and ends its layers with it.
    const layer = new Publisher(
      this.name,
      session,
      { ...this.options, mediaTimeoutMs: 0, log: this.options.log.child({ layer: spatial }) },
      this,
    );
    layer.clientAddress = this.clientAddress;
    session.connect();
    return layer;
  }

  /** What it took in and passed on. */
  get counters(): {
    packets: number;
    bytes: number;
    duplicates: number;
    frames: number;
    keyframes: number;
    keyframeRequests: number;
    sinkErrors: number;
  } {
    const { frames, keyframes, sinkErrors } = this.#fanout.counters;
    return {
      packets: this.#received('packets'),
      bytes: this.#received('bytes'),
      duplicates: this.#received('duplicates'),
      frames,
      keyframes,
      keyframeRequests: this.#keyframeRequests,
      sinkErrors,
    };
  }

  /**
   * A publisher whose page was closed or whose network went away says nothing; WebRTC itself
   * notices only when consent expires (30 s). Silence on every track notices it sooner: a browser
   * sends frames even for a muted microphone or a disabled camera. On a machine out of CPU, silence
   * says nothing: the packets may wait in the engine or a socket while this thread or the engine's
   * process does not get to run. Such time is not counted: a check that came late (this thread
   * held), or one while the machine is saturated, starts the silence afresh.
   */
  #watchMedia(): void {
    const timeoutMs = this.options.mediaTimeoutMs ?? 0;
    if (!timeoutMs) return;
    const everyMs = Math.min(500, timeoutMs / 4);
    // Told by the packet count standing still between checks, not by a clock read per packet.
    let packets = this.#received('packets');
    let silentSince = monotonicMs();
    this.#unwatchMedia = checkEvery(everyMs, (now, onTime) => {
      const received = this.#received('packets');
      const held = !onTime || (this.options.saturated?.() ?? false);
      if (received !== packets || held) {
        packets = received;
        silentSince = now;
      } else if (now - silentSince >= timeoutMs) {
        void this.close(`no media from the publisher for ${Math.round((now - silentSince) / 100) / 10} s`, true);
      }
    });
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
    return this.#fanout.keyframe !== undefined;
  }

  /** Resolves once a keyframe to start from is cached, or rejects after `timeoutMs` (the sender is asked for one meanwhile). */
  keyframeCached(timeoutMs: number): Promise<void> {
    return this.#fanout.keyframeCached(timeoutMs);
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
    return this.#fanout.cachedKeyframeMs;
  }

  /** Video frames per second over the latest frames, once there are a few. */
  get frameRate(): number | undefined {
    return this.#fanout.frameRate;
  }

  /** A track's RTP timestamp on the publisher's shared clock, in milliseconds (a layer's sound: its stream's). */
  captureMs(kind: MediaKind, timestamp: number): number | undefined {
    const pipeline = this.#pipelines.get(kind);
    if (!pipeline && kind === 'audio' && this.origin !== this) return this.origin.captureMs(kind, timestamp);
    return pipeline?.receiver.captureMs(timestamp);
  }

  /** Where its own sound goes once timed: its fan-out, then each simulcast layer's (`#followAudio`). */
  #audioTee(own: PacketTarget): PacketTarget {
    const followers = this.#audioFollowers;
    return {
      push: (packet) => {
        own.push(packet);
        for (const follower of followers) follower.push(packet);
      },
    };
  }

  /** A simulcast layer takes the stream's timed sound; the function returned stops it. */
  #followAudio(target: PacketTarget): () => void {
    this.#audioFollowers.add(target);
    return () => this.#audioFollowers.delete(target);
  }

  /** An audio packet's samples, interleaved stereo 16-bit at 48 kHz, decoded once for every sink. */
  audioPcm(packet: AudioPacket): Int16Array | undefined {
    return this.#opus?.pcm(packet);
  }

  /** RTP packets of this stream never received, both tracks (retransmitted ones count as received). */
  get packetsLost(): number {
    let lost = 0;
    for (const { receiver } of this.#pipelines.values()) lost += receiver.lost;
    return lost;
  }

  /**
   * The stream's RTP hop by hop, both tracks: what the engine received from the publisher and lost
   * on the way to it, what it sent on towards the gateway, and what the gateway's frame path
   * received (duplicates included). Undefined when the engine does not count.
   */
  get hops(): { engineReceived: number; engineLost: number; engineSent: number; gatewayReceived: number } | undefined {
    const hops = {
      engineReceived: 0,
      engineLost: 0,
      engineSent: 0,
      gatewayReceived: this.#received('packets') + this.#received('duplicates'),
    };
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
    return this.#fanout.keyframe;
  }

  /** Frames dropped since the stream began because a packet was lost. */
  get framesLost(): number {
    return this.#depacketizer?.framesLost ?? 0;
  }

  /**
   * Adds a sink. With `fromKeyframe`, the cached keyframe, the frames since and the audio since are
   * written to it first, in the same tick, so it sees a gapless stream that starts with a keyframe.
   * True when it was started so; otherwise its video starts at the next keyframe.
   */
  attach(sink: MediaSink, fromKeyframe: boolean): boolean {
    return this.#fanout.attach(sink, fromKeyframe);
  }

  detach(sink: MediaSink): void {
    this.#fanout.detach(sink);
  }

  /** Ends the stream; `lost` when the publisher went away rather than ending it on purpose. */
  async close(reason = 'closed by the gateway', lost = false): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#untickKeyframes?.();
    this.#unwatchMedia?.();
    this.#untickRate();
    for (const unsubscribe of this.#unsubscribers) unsubscribe();
    this.#fanout.close();
    this.#opus?.close();
    for (const layer of this.#layers.values())
      void layer.then(
        (publisher) => publisher.close(reason, lost),
        () => {},
      );
    this.options.log.info({ reason }, 'publisher closed');
    await this.session.close(reason);
    this.safeEmit('closed', reason, lost);
    this.removeAllListeners();
  }

  /** A count of both tracks' receivers. */
  #received(count: 'packets' | 'bytes' | 'duplicates'): number {
    let total = 0;
    for (const { receiver } of this.#pipelines.values()) total += receiver[count];
    return total;
  }
}
