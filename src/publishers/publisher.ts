import { monotonicMs, wallClockMs } from '../core/clock.js';
import type { Logger } from 'pino';
import { TypedEmitter } from '../core/events.js';
import { checkEvery, onTick } from '../core/tick.js';
import type { IngestSession } from '../ingest/engine.js';
import type { MediaKind, VideoCodec } from '../media/codecs.js';
import type { Depacketizer, PendingFrame } from '../media/depacketizer.js';
import { DEPACKETIZERS } from '../media/depacketizers.js';
import { OpusStage } from './opus-stage.js';
import { Fanout } from './fanout.js';
import { KEYFRAME_CHECK_MS, KeyframeSchedule } from './keyframes.js';
import { RateMeter } from './stats.js';
import { LayerSession } from './layers.js';
import { StreamTracks, type Hops } from './tracks.js';
import { LAYER_IDLE_MS, SimulcastLayers, type LayerPublisher } from './simulcast.js';
import type { AudioPacket, MediaSink, PacketSink, VideoFrame } from '../media/sinks.js';

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

/**
 * A track's first packets wait this long at most for the least-delayed one (ms): a thread busy when
 * they came reads seconds of them at once, and the track is timed from the last of that burst. A
 * burst read slowly (a busy thread) takes a while; a publish on time waits for 60 ms of its media.
 */
const FIRST_PACKETS_SETTLE_MS = 1000;

/** How long the depacketizer waits for a missing video packet (a NACK retransmission). */
const REORDER_WAIT_MS = 100;

/**
 * One published stream: owns its ingest session and the stages its media passes through, in one
 * direction: each track's `RtpReceiver` (repeats dropped, packets timed), the video's
 * depacketizer (whole frames), and the `Fanout` that gives every sink the same frames and packets
 * and keeps the start cache, so that a new push starts from a keyframe at once. It asks the sender
 * for a keyframe every `keyframeIntervalMs`, so passed-through H.264 meets the platforms' 2 s GOP advice.
 */
export class Publisher extends TypedEmitter<PublisherEvents> implements LayerPublisher {
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
    this.#rate.sample(this.#tracks.received('bytes'));
    this.#layers.releaseIdle();
  }, 1000);
  readonly #tracks: StreamTracks;
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
  readonly #audioFollowers = new Set<PacketSink>();
  /** Simulcast: a publisher of each lower layer a push asked for. */
  readonly #layers: SimulcastLayers<Publisher>;
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
    this.#layers = new SimulcastLayers(
      (spatial) => this.#makeLayer(spatial),
      options.layerIdleMs ?? LAYER_IDLE_MS,
      options.log,
    );
    const fanout = (this.#fanout = new Fanout(this.videoCodec !== undefined, options.log));
    this.#keyframes = new KeyframeSchedule(
      options.keyframeIntervalMs,
      () => {
        this.#keyframeRequests++;
        this.#tracks.track('video')?.requestKeyframe();
      },
      fanout,
    );
    if (this.hasAudio) this.#opus = new OpusStage();
    if (this.videoCodec) {
      const Codec = DEPACKETIZERS[this.videoCodec];
      // After a loss, frames resume at the next keyframe: one is asked for, and nothing is started from before it.
      const onLoss = (): void => {
        fanout.lost();
        this.requestKeyframe();
      };
      this.#depacketizer = new Codec(fanout, { maxWaitMs: REORDER_WAIT_MS, onLoss });
    }
    this.#tracks = new StreamTracks(
      session,
      (track) => {
        if (track.kind === 'video') return this.#depacketizer;
        // A simulcast layer's sound is its stream's, timed once on the stream's own anchor: every
        // layer's pushes then hold the same sound against the pictures.
        if (this.origin === this) return this.#audioTee(fanout.audioInput);
        this.#unsubscribers.push(this.origin.#followAudio(fanout.audioInput));
        return undefined;
      },
      {
        settleMs: options.firstPacketsSettleMs ?? FIRST_PACKETS_SETTLE_MS,
        log: options.log,
        onLayer: (layer) => this.safeEmit('layer', layer),
      },
    );
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
    return this.#tracks.track('video')?.layers ?? 0;
  }

  /** Simulcast: the layer its video carries now (0 the lowest), undefined while none comes. */
  get currentLayer(): number | undefined {
    return this.#tracks.track('video')?.currentLayer;
  }

  /**
   * Simulcast: a publisher of layer `spatial` alone (its video, the stream's audio), made at its
   * first use, shared by every push of that layer, and ended with this one. The top layer is this
   * publisher's own video.
   */
  layer(spatial: number): Promise<Publisher> {
    if (spatial >= this.layers - 1) return Promise.resolve(this);
    return this.#layers.get(spatial);
  }

  /** Simulcast: the lower layers that have a publisher now (let go when no push holds them). */
  get layersTaken(): number[] {
    return this.#layers.taken;
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

  get idleSince(): number | undefined {
    return this.#holders > 0 ? undefined : this.#idleSince;
  }

  touch(): void {
    this.#idleSince = monotonicMs();
  }

  async #makeLayer(spatial: number): Promise<Publisher> {
    const track = this.#tracks.track('video');
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
      packets: this.#tracks.received('packets'),
      bytes: this.#tracks.received('bytes'),
      duplicates: this.#tracks.received('duplicates'),
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
    let packets = this.#tracks.received('packets');
    let silentSince = monotonicMs();
    this.#unwatchMedia = checkEvery(everyMs, (now, onTime) => {
      const received = this.#tracks.received('packets');
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
    if (kind === 'audio' && this.origin !== this && !this.#tracks.has(kind))
      return this.origin.captureMs(kind, timestamp);
    return this.#tracks.captureMs(kind, timestamp);
  }

  /** Where its own sound goes once timed: its fan-out, then each simulcast layer's (`#followAudio`). */
  #audioTee(own: PacketSink): PacketSink {
    const followers = this.#audioFollowers;
    return {
      push: (packet) => {
        own.push(packet);
        for (const follower of followers) follower.push(packet);
      },
    };
  }

  /** A simulcast layer takes the stream's timed sound; the function returned stops it. */
  #followAudio(target: PacketSink): () => void {
    this.#audioFollowers.add(target);
    return () => this.#audioFollowers.delete(target);
  }

  /** An audio packet's samples, interleaved stereo 16-bit at 48 kHz, decoded once for every sink. */
  audioPcm(packet: AudioPacket): Int16Array | undefined {
    return this.#opus?.pcm(packet);
  }

  /** RTP packets of this stream never received, both tracks (retransmitted ones count as received). */
  get packetsLost(): number {
    return this.#tracks.lost;
  }

  /**
   * The stream's RTP hop by hop, both tracks: what the engine received from the publisher and lost
   * on the way to it, what it sent on towards the gateway, and what the gateway's frame path
   * received (duplicates included). Undefined when the engine does not count.
   */
  get hops(): Hops | undefined {
    return this.#tracks.hops;
  }

  /** NACKs sent for this stream's lost packets, both tracks. */
  get nacksSent(): number {
    return this.#tracks.nacksSent;
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
    this.#tracks.close();
    for (const unsubscribe of this.#unsubscribers) unsubscribe();
    this.#fanout.close();
    this.#opus?.close();
    this.#layers.close(reason, lost);
    this.options.log.info({ reason }, 'publisher closed');
    await this.session.close(reason);
    this.safeEmit('closed', reason, lost);
    this.removeAllListeners();
  }
}
