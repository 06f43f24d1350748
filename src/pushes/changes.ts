import { monotonicMs } from '../core/clock.js';
import type { PushService } from './service.js';
import type { PushState } from './states.js';
import type { Push } from './push.js';
import type { FailureCode } from '../links/failures.js';

/**
 * One change of a push's state, as everything that follows pushes hears it: lifecycle events
 * (webhooks), the SDK's destination messages, the console. Each is derived from this one record,
 * so they cannot disagree. Holds no secret.
 */
export interface PushChange {
  mediaSessionId: string;
  /** The published stream it republishes. */
  stream: string;
  /** The destination with its stream key, password and query values masked. */
  destination: string;
  /** The state it leaves; undefined for its first. */
  previous?: PushState;
  state: PushState;
  /** Why it reconnects, waits in standby or failed (`shownReason`). */
  reason?: string;
  /** `failed`: whose fault it was. */
  errorCode?: FailureCode;
  /** `running` for the first time: from the startup request to the first video frame written. */
  startupMs?: number;
  /** `running` again after reconnecting: how long the output was down. */
  outageMs?: number;
}

/** The one rule for when a push's last error is told with its state: while it reconnects, waits in standby or has failed. */
export function shownReason(state: PushState, lastError: string | undefined): string | undefined {
  return state === 'reconnecting' || state === 'standby' || state === 'failed' ? lastError : undefined;
}

/** Follows every state change of `pushes`' pushes; returns the function that stops following. */
export function followPushes(pushes: PushService, listener: (change: PushChange) => void): () => void {
  const previous = new WeakMap<Push, PushState>();
  /** When each push's current outage began. */
  const downSince = new WeakMap<Push, number>();
  const onState = (t: Push, state: PushState): void => {
    const before = previous.get(t);
    previous.set(t, state);
    const change: PushChange = {
      mediaSessionId: t.mediaSessionId,
      stream: t.publisher.name,
      destination: t.destination.redactedUrl,
      state,
    };
    if (before !== undefined) change.previous = before;
    const reason = shownReason(state, t.lastError);
    if (reason) change.reason = reason;
    if (state === 'failed' && t.errorCode) change.errorCode = t.errorCode;
    if (state === 'running' && (before === undefined || before === 'starting') && t.writer.firstFrameAt !== undefined)
      change.startupMs = t.writer.firstFrameAt - t.createdMonoMs;
    if (state === 'reconnecting') downSince.set(t, monotonicMs());
    else if (state === 'running' && downSince.has(t)) change.outageMs = monotonicMs() - downSince.get(t)!;
    if (state !== 'reconnecting') downSince.delete(t);
    listener(change);
  };
  pushes.on('state', onState);
  return () => pushes.off('state', onState);
}
