import { monotonicMs } from '../core/clock.js';
import { ClockMapping, FirstPackets, type Discontinuity } from './clock-mapping.js';
import type { MediaPacket, PacketSink, RtpSink } from './sinks.js';

export const RTP_HEADER_SIZE = 12;

/**
 * Reads an RTP packet (RFC 3550): the header's fields and the payload, past the CSRCs, the header
 * extension and any padding. The payload is a view of `packet`, not a copy. Undefined for anything
 * that is not a well-formed RTP version 2 packet.
 */
export function parseRtp(packet: Buffer): MediaPacket | undefined {
  if (packet.length < RTP_HEADER_SIZE || packet[0]! >> 6 !== 2) return undefined;
  const first = packet[0]!;
  let offset = RTP_HEADER_SIZE + (first & 0x0f) * 4;
  if (first & 0x10) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  }
  let end = packet.length;
  if (first & 0x20) end -= packet[end - 1]!;
  if (end < offset) return undefined;
  return {
    sequenceNumber: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    marker: (packet[1]! & 0x80) !== 0,
    payload: packet.subarray(offset, end),
    captureMs: 0,
  };
}

/**
 * The start a local stream's tracks share: set by the first packet of any of them, taken as its
 * encoder's timestamps say (`startMs` after the start), so each track keeps its place beside the
 * others whichever packet arrived first.
 */
export class StreamStart {
  #startMs: number | undefined;

  /** The monotonic time (ms) of a track's first timestamp, which stands `startMs` after the start. */
  at(startMs: number): number {
    this.#startMs ??= monotonicMs() - startMs;
    return this.#startMs + startMs;
  }
}

/**
 * Drops repeated sequence numbers, such as Chromium's RTX bandwidth probes that re-send packets
 * already received; ffmpeg would log them as "dropping old packet". Remembers the last 2048
 * sequence numbers in a bitmap, so the check costs O(1) per packet.
 */
export class DuplicateFilter {
  static readonly WINDOW = 2048;
  static readonly RESET_DISTANCE = 16384;
  readonly #seen = new Uint8Array(65536 / 8);
  #highest: number | undefined;
  /** Packets the sequence numbers say were sent, and those that came (each once). */
  #expected = 0;
  #received = 0;

  /** Packets never received (a late retransmission that came counts as received). */
  get lost(): number {
    return Math.max(0, this.#expected - this.#received);
  }

  /** True when the packet is new and should be forwarded. */
  accept(sequenceNumber: number): boolean {
    const seq = sequenceNumber & 0xffff;
    if (this.#highest !== undefined) {
      const ahead = (seq - this.#highest) & 0xffff;
      if (ahead !== 0 && ahead < 0x8000) {
        // Moving forward: forget the numbers that fall out of the window.
        for (let i = 1; i <= Math.min(ahead, DuplicateFilter.WINDOW); i++)
          this.#clear((this.#highest + i - DuplicateFilter.WINDOW) & 0xffff);
        this.#highest = seq;
        this.#expected += ahead;
      } else {
        const behind = (this.#highest - seq) & 0xffff;
        if (behind > DuplicateFilter.RESET_DISTANCE) {
          // Far out of order: the sender restarted its numbering, so start afresh.
          this.#seen.fill(0);
          this.#highest = seq;
          this.#expected += 1;
        } else if (behind >= DuplicateFilter.WINDOW) {
          return false; // older than the window: too late to be of use
        }
      }
    } else {
      this.#highest = seq;
      this.#expected = 1;
    }
    const byte = seq >> 3;
    const bit = 1 << (seq & 7);
    if (this.#seen[byte]! & bit) return false;
    this.#seen[byte]! |= bit;
    this.#received++;
    return true;
  }

  #clear(seq: number): void {
    this.#seen[seq >> 3]! &= ~(1 << (seq & 7));
  }
}

/** How a receiver times its track. */
export interface TrackTiming {
  /** A local stream's track: timed from the stream's start, `startMs` before its first timestamp. */
  local?: { start: StreamStart; startMs: number };
  /**
   * A publisher's track: how long its first packets may wait for the least-delayed one to anchor
   * its time on (`FirstPackets`; ms; 0, the default: the first packet anchors it).
   */
  settleMs?: number;
  /** Told when the track's RTP time jumps to a new timeline (`ClockMapping`). */
  onDiscontinuity?: (discontinuity: Discontinuity) => void;
}

/** First packets held while the track's start is searched for, at most (a flood holds no more). */
const MAX_HELD = 4096;

/**
 * One track's RTP as the gateway takes it from the engine: repeated packets dropped, the others
 * counted, timed on the publisher's clock and handed on to `target`. The first stage of a packet's
 * walk after the engine's hand-off.
 */
export class RtpReceiver implements RtpSink {
  packets = 0;
  /** Payload bytes of the packets taken. */
  bytes = 0;
  duplicates = 0;
  readonly #filter = new DuplicateFilter();
  #clock: ClockMapping | undefined;
  /** While the track's start is searched for: the search, and the packets waiting with their arrivals. */
  #first: FirstPackets | undefined;
  #held: { packet: MediaPacket; arrivalMs: number }[] = [];

  constructor(
    readonly clockRate: number,
    private readonly target: PacketSink,
    private readonly timing: TrackTiming = {},
  ) {}

  /** Packets never received (retransmitted ones count as received). */
  get lost(): number {
    return this.#filter.lost;
  }

  /** An RTP timestamp of this track on the gateway's media clock (ms), once its start is known. */
  captureMs(timestamp: number): number | undefined {
    return this.#clock?.captureMs(timestamp);
  }

  datagram(buffer: Buffer): void {
    const packet = parseRtp(buffer);
    if (packet) this.packet(packet);
  }

  packet(packet: MediaPacket): void {
    if (!this.#filter.accept(packet.sequenceNumber)) {
      this.duplicates++;
      return;
    }
    this.packets++;
    this.bytes += packet.payload.length;
    const arrivalMs = monotonicMs();
    if (this.#clock) {
      packet.captureMs = this.#clock.next(packet.timestamp, arrivalMs);
      this.target.push(packet);
    } else if (this.timing.local) {
      const { start, startMs } = this.timing.local;
      packet.captureMs = start.at(startMs);
      // A local stream's time is the gateway's own clock: nothing to follow.
      this.#start(packet.timestamp, packet.captureMs, arrivalMs, false);
      this.target.push(packet);
    } else this.#search(packet, arrivalMs);
  }

  /** A publisher's first packets wait until their least-delayed one is known, then go on timed from it. */
  #search(packet: MediaPacket, arrivalMs: number): void {
    this.#held.push({ packet, arrivalMs });
    let found: boolean;
    if (this.#first) found = this.#first.add(packet.timestamp, arrivalMs) || this.#held.length >= MAX_HELD;
    else {
      this.#first = new FirstPackets(this.clockRate, packet.timestamp, arrivalMs, this.timing.settleMs ?? 0);
      found = !this.timing.settleMs;
    }
    if (!found) return;
    const { timestamp, atMs, arrivalMs: firstArrivalMs } = this.#first.anchor;
    const clock = this.#start(timestamp, atMs, firstArrivalMs, true);
    const held = this.#held;
    this.#first = undefined;
    this.#held = [];
    for (const { packet: waiting, arrivalMs: arrived } of held) {
      waiting.captureMs = clock.next(waiting.timestamp, arrived);
      this.target.push(waiting);
    }
  }

  #start(timestamp: number, atMs: number, arrivalMs: number, followArrivals: boolean): ClockMapping {
    this.#clock = new ClockMapping(
      this.clockRate,
      timestamp,
      atMs,
      arrivalMs,
      this.timing.onDiscontinuity,
      followArrivals,
    );
    return this.#clock;
  }
}
