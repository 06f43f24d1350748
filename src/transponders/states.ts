/**
 * A transponder's states:
 * - `starting`: opening the link and the pipeline for the first time;
 * - `running`: the publisher's media goes out;
 * - `standby`: the publisher went away; the last picture and silence go out until it comes back
 *   or the grace period ends;
 * - `resuming`: the publisher came back and its transcoded video is being prepared; the still
 *   picture goes on until that video's first keyframe (the hand-over);
 * - `reconnecting`: the output broke and is being restored after a wait;
 * - `stopping`, `stopped`: ended on request; `failed`: ended by a failure (it says why).
 */
export const TRANSPONDER_STATES = ['starting', 'running', 'standby', 'resuming', 'reconnecting', 'stopping', 'stopped', 'failed'] as const;
export type TransponderState = (typeof TRANSPONDER_STATES)[number];

/** Allowed state changes; anything else is a bug and is refused loudly. */
export const TRANSITIONS: Readonly<Record<TransponderState, readonly TransponderState[]>> = {
  starting: ['running', 'stopping', 'failed'],
  running: ['standby', 'reconnecting', 'stopping', 'failed'],
  standby: ['running', 'resuming', 'reconnecting', 'stopping', 'failed'],
  resuming: ['running', 'standby', 'reconnecting', 'stopping', 'failed'],
  reconnecting: ['running', 'standby', 'stopping', 'failed'],
  failed: [],
  stopping: ['stopped'],
  stopped: [],
};

/** Output is up: live, the still picture, or the still picture while live video is prepared. */
export function isUp(state: TransponderState): boolean {
  return state === 'running' || state === 'standby' || state === 'resuming';
}

/** Not ended: audio commands apply, and a new startup to the same destination is refused. */
export function isActive(state: TransponderState): boolean {
  return state === 'starting' || state === 'reconnecting' || isUp(state);
}
