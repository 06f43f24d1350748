import { mixerUriSchema } from './requests.js';

/**
 * Web Call Server's rooms (`mixer_auto_start`) by their callers' stream names: `control/rooms.ts`
 * joins each caller to its room's mixer, and a cluster places a caller at the node of its room's
 * mixer (`cluster/cluster-plane.ts`).
 */

/** A caller of a room, by its stream's name: `user1#room1`, or `user1#room1#desktop` for a screen it shares. */
export interface Caller {
  user: string;
  room: string;
  desktop: boolean;
}

const CALLER = /^([^#]+)#([^#]+)(#desktop)?$/;

/** The caller a stream's name makes, when it is one (its room a mixer's name). */
export function callerOf(stream: string): Caller | undefined {
  const match = CALLER.exec(stream);
  if (!match || !mixerUriSchema.safeParse(`mixer://${match[2]}`).success) return undefined;
  return { user: match[1]!, room: match[2]!, desktop: match[3] !== undefined };
}
