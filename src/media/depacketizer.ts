import type { FrameSink, MediaPacket, PacketSink, VideoFrame } from './sinks.js';

export interface DepacketizerOptions {
  /** How long a missing packet is waited for (a NACK retransmission) before it counts as lost. */
  maxWaitMs: number;
  /** Called when a loss was found; the stream resumes at the next keyframe, so ask for one. */
  onLoss?: () => void;
}

/** A frame being assembled from its packets. */
export interface PendingFrame {
  timestamp: number;
  /** Its capture time on the publisher's clock (ms). */
  captureMs: number;
  key: boolean;
  /** A packet of it is missing or unreadable: it is never emitted. */
  damaged: boolean;
  /** Its packets so far, and their payloads' bytes. */
  packets: number;
  bytes: number;
}

/** A whole frame's place in the stream and what it came in, as its depacketizer counted them. */
export abstract class DepacketizedFrame {
  readonly timestamp: number;
  readonly captureMs: number;
  readonly key: boolean;
  readonly packets: number;
  readonly bytes: number;

  constructor(pending: PendingFrame) {
    this.timestamp = pending.timestamp;
    this.captureMs = pending.captureMs;
    this.key = pending.key;
    this.packets = pending.packets;
    this.bytes = pending.bytes;
  }
}

interface Held {
  packet: MediaPacket;
  arrivedAt: number;
}

/** Packets held for reordering at most; more than this ahead of a hole declares it lost. */
const MAX_HELD = 512;

/**
 * RTP packets to whole frames, whatever the codec: packets are put back in sequence order, waiting
 * up to `maxWaitMs` for a missing one; a frame is the packets of one timestamp, ended by the marker
 * bit; a frame with a hole is never emitted, and after a loss output resumes at the next keyframe,
 * so what goes out always decodes cleanly. Output starts at the first keyframe. Subclasses read
 * their codec's payloads into frames, which go to `sink`.
 */
export abstract class Depacketizer<F extends PendingFrame> implements PacketSink {
  /** Frames dropped because a packet was lost. */
  framesLost = 0;

  #next: number | undefined;
  readonly #held = new Map<number, Held>();
  #frame: F | undefined;
  #awaitingKeyframe = true;

  constructor(
    private readonly sink: FrameSink,
    private readonly options: DepacketizerOptions,
  ) {}

  /** A new frame of `timestamp`, captured at `captureMs`, before any of its payloads. */
  protected abstract start(timestamp: number, captureMs: number): F;
  /** Reads one packet's payload into `frame`. */
  protected abstract parse(frame: F, payload: Buffer): void;
  /** The frame a complete, undamaged one makes; undefined when it is empty, or damaged after all. */
  protected abstract complete(frame: F): VideoFrame | undefined;

  push(packet: MediaPacket, now = performance.now()): void {
    const seq = packet.sequenceNumber & 0xffff;
    this.#next ??= seq;
    const ahead = (seq - this.#next) & 0xffff;
    if (ahead >= 0x8000) return; // late or repeated
    if (ahead > 0) {
      this.#held.set(seq, { packet, arrivedAt: now });
      this.#skipLostPackets(now);
      return;
    }
    this.#consume(packet);
    this.#drain();
  }

  /** Gives up on a hole once the packet after it waited too long. */
  #skipLostPackets(now: number): void {
    let oldest = Infinity;
    for (const held of this.#held.values()) oldest = Math.min(oldest, held.arrivedAt);
    if (now - oldest < this.options.maxWaitMs && this.#held.size < MAX_HELD) return;
    let nearest = 0x10000;
    for (const seq of this.#held.keys()) nearest = Math.min(nearest, (seq - this.#next!) & 0xffff);
    this.#next = (this.#next! + nearest) & 0xffff;
    // The frame being assembled has a hole: it counts as lost when it ends. A hole between frames is one frame lost.
    if (this.#frame) this.#frame.damaged = true;
    else this.framesLost++;
    this.#awaitKeyframe();
    this.#drain();
  }

  #drain(): void {
    for (let held = this.#held.get(this.#next!); held; held = this.#held.get(this.#next!)) {
      this.#held.delete(this.#next!);
      this.#consume(held.packet);
    }
  }

  #consume(packet: MediaPacket): void {
    this.#next = (packet.sequenceNumber + 1) & 0xffff;
    if (this.#frame && this.#frame.timestamp !== packet.timestamp) this.#finish(); // its last packet was lost
    const frame = (this.#frame ??= this.start(packet.timestamp, packet.captureMs));
    frame.packets++;
    frame.bytes += packet.payload.length;
    if (packet.payload.length > 0) this.parse(frame, packet.payload);
    if (packet.marker) this.#finish();
  }

  #finish(): void {
    const frame = this.#frame;
    this.#frame = undefined;
    if (!frame) return;
    const complete = frame.damaged ? undefined : this.complete(frame);
    if (frame.damaged) {
      this.framesLost++;
      this.#awaitKeyframe();
      return;
    }
    if (complete === undefined || (this.#awaitingKeyframe && !frame.key)) return;
    this.#awaitingKeyframe = false;
    this.sink.frame(complete);
  }

  /** After a loss, output waits for a keyframe, asked for once. */
  #awaitKeyframe(): void {
    if (this.#awaitingKeyframe) return;
    this.#awaitingKeyframe = true;
    this.options.onLoss?.();
  }
}
