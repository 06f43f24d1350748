import { GatewayError, type ErrorCode } from '../core/errors.js';
import { RtmpError } from '../rtmp/errors.js';

/**
 * Why an attempt failed:
 * - `unreachable`: nothing answered or the connection broke (server down, network cut);
 * - `busy`: the server still holds a stream of that name ("already publishing"): usually our own
 *   session from before the drop, which it lets go once the old connection's end reaches it;
 * - `rejected`: the server refused the publish otherwise (bad key or application): tried once more,
 *   then the push fails with the server's reason;
 * - `local`: ffmpeg or the audio mixer could not start here;
 * - `storage`: a recording's disk is (nearly) full: not tried again;
 * - `slow`: ffmpeg started but wrote nothing within `ffmpeg_start_timeout_ms`: the machine did not
 *   keep up (saturated), so a startup that fails so is worth trying again later;
 * - `saturated`: the push was ended to keep the others going on a machine out of CPU (the newest
 *   first): it starts again once the load has passed.
 */
export type FailureKind = 'unreachable' | 'busy' | 'rejected' | 'local' | 'slow' | 'storage' | 'saturated';

/** A failed attempt to open an output (its link or its pipeline), and what kind of failure it was. */
export class OpenError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
  ) {
    super(message);
  }
}

export function classifyFailure(error: unknown): FailureKind {
  // The destination policy refused the address a reconnect's lookup gave.
  if (error instanceof GatewayError) return 'rejected';
  if (!(error instanceof RtmpError) || error.code === undefined) return 'unreachable';
  const text = `${error.code} ${error.description ?? ''}`;
  return /already|in use/i.test(text) ? 'busy' : 'rejected';
}

/**
 * Whose fault a failure was: the destination's (it refused, or could not be reached), the
 * machine's load (`unavailable`: try again later), a recording's full disk (`insufficient_storage`)
 * or the gateway's own.
 */
export const FAILURE_CODES = [
  'destination_refused',
  'destination_unreachable',
  'unavailable',
  'insufficient_storage',
  'internal',
] as const satisfies readonly ErrorCode[];
export type FailureCode = (typeof FAILURE_CODES)[number];

/** Whose fault a failure of `kind` was. */
export function errorCodeFor(kind: FailureKind): FailureCode {
  if (kind === 'rejected' || kind === 'busy') return 'destination_refused';
  if (kind === 'slow' || kind === 'saturated') return 'unavailable';
  if (kind === 'storage') return 'insufficient_storage';
  return kind === 'unreachable' ? 'destination_unreachable' : 'internal';
}
