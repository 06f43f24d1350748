import type { FailureKind } from './failures.js';
import type { TagSink } from '../media/sinks.js';
import type { FourCc } from '../media/flv.js';

/** What an send buffer is doing: filling, sending paced, or passing media straight on. */
export type SendBufferState = 'buffering' | 'playing' | 'passthrough';

/** What the guard reads of the connection it protects. */
export interface DeliveryProbe {
  /** Bytes written to the connection so far. */
  readonly bytesWritten: number;
  /** Bytes written that the destination has not acknowledged (or, before it ever did, not yet sent). */
  readonly undeliveredBytes: number;
}

/** What a link has done so far; added up over a push's links. */
export interface LinkStats {
  written: number;
  acknowledged: number;
  bufferings: number;
  framesDropped: number;
}

/** What the links of one push did, added up: the ended ones, and the current one. */
export class LinkTotals {
  readonly #past: LinkStats = { written: 0, acknowledged: 0, bufferings: 0, framesDropped: 0 };

  /** Counts an ended link. */
  add(stats: LinkStats): void {
    for (const key of Object.keys(this.#past) as (keyof LinkStats)[]) this.#past[key] += stats[key];
  }

  /** The totals with `current` (the link now) counted in. */
  with(current: LinkStats | undefined): LinkStats {
    const total = { ...this.#past };
    if (current) for (const key of Object.keys(total) as (keyof LinkStats)[]) total[key] += current[key];
    return total;
  }
}

/** One session with the destination (RTMP, or SRT through ffmpeg), as the push sees it. */
export interface Link {
  /** Where media for the destination is written. */
  readonly out: TagSink;
  /**
   * For a link that connects once media flows (SRT): resolves when the destination took the
   * session, rejects with an `OpenError` when it did not. Absent: connected when opened.
   */
  readonly connected?: Promise<void>;
  readonly stats: LinkStats;
  /** How far the destination lags behind what was written (ms). */
  readonly lagMs: number;
  /** When the destination last acknowledged what it received, if it ever did. */
  readonly acknowledgedAt?: number;
  /** The send buffer, when one is in front of the link. */
  readonly buffer: { state: SendBufferState; levelMs: number } | undefined;
  /** Called once when the link breaks by itself (not by `close`). */
  onLost(listener: (reason: string, kind: FailureKind) => void): void;
  close(): Promise<void>;
}

/**
 * Opens a link; throws an `OpenError`. `reconnecting`: a restore attempt rather than the first start;
 * `videoFourCcs`: the Enhanced RTMP codecs it will carry.
 */
export type LinkFactory = (reconnecting: boolean, videoFourCcs?: readonly FourCc[]) => Promise<Link>;
