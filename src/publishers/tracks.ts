import type { Logger } from 'pino';
import type { IngestSession, IngestTrack } from '../ingest/engine.js';
import type { MediaKind } from '../media/codecs.js';
import { RtpReceiver, StreamStart } from '../media/rtp.js';
import type { PacketSink } from '../media/sinks.js';

interface Track {
  track: IngestTrack;
  receiver: RtpReceiver;
}

/** The RTP hop by hop, both tracks (`Publisher.hops`). */
export interface Hops {
  engineReceived: number;
  engineLost: number;
  engineSent: number;
  gatewayReceived: number;
}

/**
 * A published stream's tracks as they arrive: each ingest track's `RtpReceiver` (repeats dropped,
 * packets timed), delivering to the target its stream gives it, and their counts.
 */
export class StreamTracks {
  readonly #tracks = new Map<MediaKind, Track>();
  readonly #unsubscribers: (() => void)[] = [];

  /** `targetFor` says where a track's timed packets go, or nothing: the track is not received. */
  constructor(
    session: IngestSession,
    targetFor: (track: IngestTrack) => PacketSink | undefined,
    options: { settleMs: number; log: Logger; onLayer: (layer: number | undefined) => void },
  ) {
    const { log } = options;
    // A local stream's tracks share a start; a publisher's are each timed from their first packet.
    const start = new StreamStart();
    for (const track of session.tracks) {
      const target = targetFor(track);
      if (!target) continue;
      const receiver = new RtpReceiver(track.clockRate, target, {
        local: track.startMs === undefined ? undefined : { start, startMs: track.startMs },
        settleMs: options.settleMs,
        onDiscontinuity: ({ jumpMs }) =>
          log.warn(
            { kind: track.kind, jumpMs },
            "the publisher's RTP time jumped: its media goes on from here as a new timeline",
          ),
      });
      this.#tracks.set(track.kind, { track, receiver });
      this.#unsubscribers.push(track.deliverTo(receiver));
      track.onLayerChange?.((layer) => {
        log.info({ layer, of: track.layers }, 'the simulcast layer forwarded changed');
        options.onLayer(layer);
      });
    }
  }

  /** The ingest track of `kind`, when it is received. */
  track(kind: MediaKind): IngestTrack | undefined {
    return this.#tracks.get(kind)?.track;
  }

  has(kind: MediaKind): boolean {
    return this.#tracks.has(kind);
  }

  /** A track's RTP timestamp on the stream's shared clock, in milliseconds. */
  captureMs(kind: MediaKind, timestamp: number): number | undefined {
    return this.#tracks.get(kind)?.receiver.captureMs(timestamp);
  }

  /** A count of both tracks' receivers. */
  received(count: 'packets' | 'bytes' | 'duplicates'): number {
    let total = 0;
    for (const { receiver } of this.#tracks.values()) total += receiver[count];
    return total;
  }

  /** RTP packets never received, both tracks (retransmitted ones count as received). */
  get lost(): number {
    let lost = 0;
    for (const { receiver } of this.#tracks.values()) lost += receiver.lost;
    return lost;
  }

  /** Undefined when the engine does not count. */
  get hops(): Hops | undefined {
    const hops = {
      engineReceived: 0,
      engineLost: 0,
      engineSent: 0,
      gatewayReceived: this.received('packets') + this.received('duplicates'),
    };
    for (const { track } of this.#tracks.values()) {
      const counts = track.engineCounts;
      if (!counts) return undefined;
      hops.engineReceived += counts.received;
      hops.engineLost += counts.lost;
      hops.engineSent += counts.sentToGateway;
    }
    return hops;
  }

  /** NACKs sent for lost packets, both tracks. */
  get nacksSent(): number {
    let sent = 0;
    for (const { track } of this.#tracks.values()) sent += track.nacksSent ?? 0;
    return sent;
  }

  /** Stops taking packets from the ingest tracks. */
  close(): void {
    for (const unsubscribe of this.#unsubscribers) unsubscribe();
  }
}
