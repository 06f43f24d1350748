import { isKeyframeBody, isSequenceHeader, isVideoSequenceHeader } from '../media/flv.js';
import type { Amf0Value } from '../media/amf0.js';
import type { DeliveryProbe } from './link.js';
import type { TagSink } from '../media/sinks.js';

/** Delivery is measured over this much recent time. */
const RATE_WINDOW_MS = 2000;
const RATE_MIN_SPAN_MS = 500;
/** The delivery rate is sampled at most this often. */
const RATE_SAMPLE_MS = 100;
/** Messages a guard has room for before its first growth: about 3 s of a stream's video and audio tags. */
const WRITTEN_INITIAL = 256;
/**
 * A new wait starts from the rate the last one measured, when it is this recent: after a catch-up
 * the guard would otherwise be blind for RATE_MIN_SPAN_MS, in which a keyframe and the frames after
 * it (~160 KB of a 2.5 Mb/s stream) go out, seconds of backlog at a slow destination.
 */
const RATE_MEMORY_MS = 30_000;
/**
 * Unacknowledged bytes that are normal on a healthy link (two of the 32 KB acknowledgement windows
 * the gateway asks for): the age of what is beyond them is the lag.
 */
const IN_FLIGHT_ALLOWANCE = 64 * 1024;
/**
 * What the drain-time prediction leaves out: one acknowledgement window, the most a destination
 * may hold received but not yet acknowledged. Less than IN_FLIGHT_ALLOWANCE: every byte beyond it
 * must still cross a slow link, and at 50 KB/s the second window alone is 0.65 s more of lag.
 */
const UNACKNOWLEDGED_WINDOW = 32 * 1024;

/**
 * Keeps a slow destination's media fresh. Each message's position in the byte stream is noted with
 * the time it was written; the lag is the age of the oldest byte the destination has not
 * acknowledged (RTMP acknowledgements prove receipt; the kernel's buffers would hide a socket's
 * backlog). What is already in flight will take undelivered bytes / delivery rate to arrive, so the
 * guard acts on the larger of the two: past `maxLagMs`, media is dropped (counted) up to a video
 * keyframe that comes once it is back under half of it, and the destination gets a gap, then
 * current media, rather than ever older media. Codec headers and metadata always go through.
 * 0 turns it off.
 */
export class LagGuard implements TagSink {
  framesDropped = 0;
  #dropping = false;
  /** Where each message written ends in the byte stream, and when it was written, oldest first. */
  readonly #written = new OffsetRing(WRITTEN_INITIAL);
  /** When, and the bytes delivered by then, every 100 ms or more over the last RATE_WINDOW_MS. */
  readonly #delivery = new OffsetRing(RATE_WINDOW_MS / RATE_SAMPLE_MS + 2);
  /** The delivery rate last measured while output waited (bytes/ms), and when (NaN: none yet). */
  #lastBytesPerMs = 0;
  #lastRateAt = Number.NaN;

  constructor(
    private readonly output: TagSink,
    private readonly probe: DeliveryProbe,
    private readonly maxLagMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Age of the oldest media the destination has not received (ms); 0 when it has it all. The last
   * IN_FLIGHT_ALLOWANCE bytes count as received: a server acknowledges whole windows only, so the
   * tail of what was sent stays unacknowledged until more is sent.
   */
  get lagMs(): number {
    const written = this.#written;
    const delivered = this.#deliveredBytes();
    for (let i = 0; i < written.length; i++)
      if (written.offset(i) > delivered) return Math.max(0, this.now() - written.time(i));
    return 0;
  }

  /** Bytes the destination has, as `lagMs` counts them (IN_FLIGHT_ALLOWANCE of the tail included). */
  #deliveredBytes(): number {
    return Math.min(
      this.probe.bytesWritten,
      this.probe.bytesWritten - this.probe.undeliveredBytes + IN_FLIGHT_ALLOWANCE,
    );
  }

  /** Forgets the messages the destination has (what `lagMs` would skip): once per message, as it is judged. */
  #forgetDelivered(): void {
    const delivered = this.#deliveredBytes();
    const written = this.#written;
    while (written.length && written.offset(0) <= delivered) written.shift();
  }

  /**
   * How long what is in flight will take to arrive at the recent delivery rate (ms). The rate is
   * measured only while output waits on the destination: while it does not, the rate is what was
   * sent, not what the destination can take (the still picture's few KB a second, before live video
   * comes back at 300 KB a second), and would predict a lag that is not there. A wait ends when the
   * destination has caught up: what it took between two waits was what was sent, so each wait
   * measures from its own start (the still picture's keyframe every 2 s, 100 KB written at once,
   * would otherwise be measured against the few KB a second sent since the last one, and dropped
   * as seconds of lag). The rate the last wait measured, when recent, stands until this one has
   * measured its own.
   */
  #expectedLagMs(): number {
    const now = this.now();
    const beyond = this.probe.undeliveredBytes - UNACKNOWLEDGED_WINDOW;
    const samples = this.#delivery;
    if (beyond <= 0) {
      samples.clear();
      return 0;
    }
    if (samples.length && now - samples.time(samples.length - 1) > RATE_WINDOW_MS) samples.clear();
    const delivered = this.probe.bytesWritten - this.probe.undeliveredBytes;
    if (!samples.length || now - samples.time(samples.length - 1) >= RATE_SAMPLE_MS) samples.push(delivered, now);
    while (samples.length > 2 && now - samples.time(0) > RATE_WINDOW_MS) samples.shift();
    const t0 = samples.time(0);
    if (now - t0 < RATE_MIN_SPAN_MS)
      return now - this.#lastRateAt <= RATE_MEMORY_MS ? beyond / this.#lastBytesPerMs : 0;
    // No delivery at all is a stall: the age of what waits tells it, and the stall timer reconnects.
    const bytesPerMs = (delivered - samples.offset(0)) / (now - t0);
    if (bytesPerMs <= 0) return 0;
    this.#lastBytesPerMs = bytesPerMs;
    this.#lastRateAt = now;
    return beyond / bytesPerMs;
  }

  writeMetadata(metadata: Record<string, Amf0Value>): void {
    this.output.writeMetadata(metadata);
    this.#note();
  }

  writeVideo(timestamp: number, body: Buffer): void {
    if (!isVideoSequenceHeader(body) && this.#drop(isKeyframeBody(body))) {
      this.framesDropped++;
      return;
    }
    this.output.writeVideo(timestamp, body);
    this.#note();
  }

  writeAudio(timestamp: number, body: Buffer): void {
    if (!isSequenceHeader(body) && this.#drop(false)) return;
    this.output.writeAudio(timestamp, body);
    this.#note();
  }

  /** Whether this message goes unsent: lagging too far starts dropping; a keyframe once caught up ends it. */
  #drop(keyframe: boolean): boolean {
    if (!this.maxLagMs) return false;
    this.#forgetDelivered();
    const lag = Math.max(this.lagMs, this.#expectedLagMs());
    if (!this.#dropping && lag > this.maxLagMs) this.#dropping = true;
    else if (this.#dropping && keyframe && lag <= this.maxLagMs / 2) this.#dropping = false;
    return this.#dropping;
  }

  #note(): void {
    if (!this.maxLagMs) return;
    this.#written.push(this.probe.bytesWritten, this.now());
  }
}

/**
 * Pairs of a byte offset and a time, oldest first, in a ring of two typed arrays: adding and
 * forgetting allocate nothing. It grows (doubling) only when full: a lagging destination's messages
 * are bounded by the guard itself (past `maxLagMs` it drops), so it never grows past what the worst
 * backlog of its link held.
 */
class OffsetRing {
  #offsets: Float64Array;
  #times: Float64Array;
  #head = 0;
  length = 0;

  constructor(capacity: number) {
    this.#offsets = new Float64Array(capacity);
    this.#times = new Float64Array(capacity);
  }

  offset(i: number): number {
    return this.#offsets[(this.#head + i) % this.#offsets.length]!;
  }

  time(i: number): number {
    return this.#times[(this.#head + i) % this.#times.length]!;
  }

  push(offset: number, time: number): void {
    if (this.length === this.#offsets.length) this.#grow();
    const at = (this.#head + this.length) % this.#offsets.length;
    this.#offsets[at] = offset;
    this.#times[at] = time;
    this.length++;
  }

  shift(): void {
    this.#head = (this.#head + 1) % this.#offsets.length;
    this.length--;
  }

  clear(): void {
    this.#head = 0;
    this.length = 0;
  }

  #grow(): void {
    const offsets = new Float64Array(this.#offsets.length * 2);
    const times = new Float64Array(this.#times.length * 2);
    for (let i = 0; i < this.length; i++) {
      offsets[i] = this.offset(i);
      times[i] = this.time(i);
    }
    this.#offsets = offsets;
    this.#times = times;
    this.#head = 0;
  }
}
