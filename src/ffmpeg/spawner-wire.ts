import { createHmac, timingSafeEqual } from 'node:crypto';

/** Where the spawner listens (a name in the abstract namespace) and the secret both ends prove they know. */
export interface SpawnerAddress {
  name: string;
  /** Hex; never sent: each side proves it knows it (`proof`). */
  secret: string;
}

/**
 * Proof of knowing `secret`, for `what` (hex). Any local process can listen at or connect to an
 * abstract name, so the secret itself is never written: a connection from the gateway says a proof
 * for its own key, and the spawner answers one of its own before it is sent anything else.
 */
export function proof(secret: string, what: string): string {
  return createHmac('sha256', Buffer.from(secret, 'hex')).update(what).digest('hex');
}

/** Whether `given` is the proof of `secret` for `what` (compared in constant time). */
export function proves(given: unknown, secret: string, what: string): boolean {
  if (typeof given !== 'string') return false;
  const expected = Buffer.from(proof(secret, what), 'hex');
  const actual = Buffer.from(given, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * What each of a child's descriptors is, by its number: `'socket'`, one end of a stream socket
 * connection the caller makes to the spawner (`SlotHello`); a path, a file the spawner opens for it
 * (one of the gateway's own descriptors, as `/proc/<gateway>/fd/<n>`); `'ignore'`, nothing.
 */
export type Slot = 'socket' | 'ignore' | { path: string };

/**
 * A connection's first line: a control connection, its key chosen by the caller, with
 * `proof(secret, 'control:<key>')`. The spawner answers `{ spawner: proof(secret, 'spawner:<key>') }`.
 */
export interface ControlHello {
  control: string;
  proof: string;
}

/**
 * A connection's first line: descriptor `fd` of request `request` of the control connection `key`,
 * with `proof(secret, 'slot:<key>:<request>:<fd>')`.
 */
export interface SlotHello {
  key: string;
  request: number;
  fd: number;
  proof: string;
}

/** A line on a control connection, from the caller: start `binary`. */
export interface SpawnRequest {
  id: number;
  binary: string;
  args: string[];
  slots: Slot[];
}

/** A line on a control connection, from the spawner. */
export type SpawnReply =
  | { id: number; pid: number }
  /** The error code (`ENOENT`, …), never Node's message (which may quote the arguments). */
  | { id: number; failed: string }
  | { id: number; exit: number | null; signal: NodeJS.Signals | null };

/**
 * How long a child whose thread, or whose gateway, has gone is given to end by itself before the
 * spawner kills it (ms): its input has ended, and a recording's ffmpeg finishes its part as it ends.
 */
export const ORPHAN_GRACE_MS = 2000;

/** The longest line accepted (a request, with ffmpeg's arguments); a connection sending more without a line break is closed. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Each line of a stream, as it comes, parsed as JSON; false from `onLine` stops reading lines. */
export function readLines(
  onChunk: (listener: (data: Buffer) => void) => void,
  onLine: (value: unknown) => boolean | void,
  onBad: () => void,
  limit = Infinity,
): void {
  let pending = '';
  let reading = true;
  onChunk((data) => {
    if (!reading) return;
    pending += data.toString('utf8');
    let end: number;
    while (reading && (end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        reading = false;
        onBad();
        return;
      }
      if (onLine(value) === false) reading = false;
    }
    if (reading && pending.length > limit) {
      reading = false;
      onBad();
    }
  });
}
