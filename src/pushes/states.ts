/**
 * A push's states, as it shows them:
 * - `starting`: opening the link and the pipeline for the first time;
 * - `running`: the publisher's media goes out;
 * - `standby`: the publisher went away; the last picture and silence go out until it comes back
 *   or the grace period ends;
 * - `resuming`: the publisher came back and its transcoded video is being prepared; the still
 *   picture goes on until that video's first keyframe (the hand-over);
 * - `reconnecting`: the output broke and is being restored after a wait;
 * - `stopping`, `stopped`: ended on request; `failed`: ended by a failure (it says why).
 */
export const PUSH_STATES = [
  'starting',
  'running',
  'standby',
  'resuming',
  'reconnecting',
  'stopping',
  'stopped',
  'failed',
] as const;
export type PushState = (typeof PUSH_STATES)[number];

/**
 * The state table's states: the shown ones and `reconnecting-away`, shown as `reconnecting`: the
 * output is being restored while the publisher is away, so it comes back in `standby` (the still
 * picture) rather than `running`. Whether the publisher is away is read from the state alone.
 */
export type PushPhase = PushState | 'reconnecting-away';

/** Allowed state changes; anything else is a bug and is refused loudly. */
export const TRANSITIONS: Readonly<Record<PushPhase, readonly PushPhase[]>> = {
  starting: ['running', 'stopping', 'failed'],
  running: ['standby', 'reconnecting', 'stopping', 'failed'],
  standby: ['running', 'resuming', 'reconnecting-away', 'stopping', 'failed'],
  resuming: ['running', 'standby', 'reconnecting', 'stopping', 'failed'],
  reconnecting: ['running', 'reconnecting-away', 'stopping', 'failed'],
  'reconnecting-away': ['standby', 'reconnecting', 'stopping', 'failed'],
  failed: [],
  stopping: ['stopped'],
  stopped: [],
};

/** The state a phase is shown as. */
export function shownState(phase: PushPhase): PushState {
  return phase === 'reconnecting-away' ? 'reconnecting' : phase;
}

/** The publisher went away and has not come back: the still picture feeds the output (or will, once restored). */
export function publisherAway(phase: PushPhase): boolean {
  return phase === 'standby' || phase === 'reconnecting-away';
}

/** Output is up: live, the still picture, or the still picture while live video is prepared. */
export function isUp(phase: PushPhase): boolean {
  return phase === 'running' || phase === 'standby' || phase === 'resuming';
}

/** The output broke and is being restored. */
export function isReconnecting(phase: PushPhase): boolean {
  return phase === 'reconnecting' || phase === 'reconnecting-away';
}

/** Not ended: audio commands apply, and a new startup to the same destination is refused. */
export function isActive(phase: PushPhase): boolean {
  return phase === 'starting' || isReconnecting(phase) || isUp(phase);
}
