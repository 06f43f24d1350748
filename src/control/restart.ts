import { GatewayError, type ErrorCode } from '../core/errors.js';

/**
 * What becomes of a kept push that did not start again when its stream published (`PushKeeper`):
 * a pure rule of the error and the attempt, so that it is read, and tested, in one place.
 */

/** A startup the destination refused or did not answer: it may take the push a moment later. */
const DESTINATION_CODES: readonly ErrorCode[] = ['destination_refused', 'destination_unreachable'];
/** Refusals that say "not now" (stream gone, gateway loaded, destination already pushed to): the push waits for the next publish. */
const WAIT_CODES: readonly ErrorCode[] = ['not_found', 'unavailable', 'conflict', 'too_many_requests'];
/** Attempts to start a kept push again at a destination that does not take it, before it is forgotten. */
const DESTINATION_ATTEMPTS = 8;
/** The first wait before a destination that did not take a kept push is tried again (ms), unless told another. */
const RETRY_FIRST_MS = 2000;
/** The longest wait between two attempts (ms): the wait doubles up to it. */
const RETRY_MAX_MS = 30_000;

type RestartDecision =
  /** Tried again in `inMs`, while the stream publishes: the destination may take it then. */
  | { action: 'retry'; attempt: number; inMs: number; reason: string }
  /** Not now: it waits, kept, for the next publish of its stream. */
  | { action: 'wait'; reason: string }
  /** Refused for good, or its destination never took it: forgotten, for `why`. */
  | { action: 'forget'; why: string };

/**
 * The decision for a kept push whose startup failed with `error`. `attempt` is the attempt this
 * failure would lead to among the destination's refusals in a row: 1 after the first start again
 * that it did not take, counted until the push starts or is forgotten. Its destination not taking
 * it: tried again after `firstMs`, doubling to `RETRY_MAX_MS`, then forgotten past
 * `DESTINATION_ATTEMPTS`. Not now (the stream went again, the gateway is loaded, the destination is
 * already pushed to): it waits. Anything else (the policy or the sound file changed, a fault):
 * forgotten.
 */
export function restartDecision(error: unknown, attempt: number, firstMs = RETRY_FIRST_MS): RestartDecision {
  const reason = error instanceof Error ? error.message : String(error);
  if (error instanceof GatewayError && DESTINATION_CODES.includes(error.code)) {
    if (attempt > DESTINATION_ATTEMPTS)
      return {
        action: 'forget',
        why: `its destination did not take it in ${DESTINATION_ATTEMPTS} attempts: ${reason}`,
      };
    return { action: 'retry', attempt, inMs: Math.min(RETRY_MAX_MS, firstMs * 2 ** (attempt - 1)), reason };
  }
  if (error instanceof GatewayError && WAIT_CODES.includes(error.code)) return { action: 'wait', reason };
  return { action: 'forget', why: `it could not start again: ${reason}` };
}
