import { GatewayError, type ErrorCode } from '../core/errors.js';
import type { LifecycleEvent } from './lifecycle.js';
import type { ArgsOf, HolderMethod } from './methods.js';
import type { PlaneStatus, ThreadLoad } from './plane.js';
import type { PushChange } from '../pushes/changes.js';

/**
 * From the main thread to a worker: a method of `HOLDER_METHODS` with its arguments, as the table
 * types them (structured-clone data, parsed where they entered the gateway: the worker checks the
 * method, not the arguments again, `answerTypedCall`).
 */
export type Call = { [M in HolderMethod]: { kind: 'call'; id: number; method: M; args: ArgsOf<M> } }[HolderMethod];

/** An error as it crosses between threads: what the HTTP answer needs, nothing more. */
export interface WireError {
  name: string;
  message: string;
  code?: ErrorCode;
  field?: string;
  retryAfterS?: number;
}

/** From a worker to the main thread, in the order they happened there. */
export type WorkerMessage =
  | { kind: 'reply'; id: number; value?: unknown; error?: WireError }
  | { kind: 'publishing'; publisherId: string }
  | { kind: 'closed'; publisherId: string; reason: string; lost: boolean }
  | { kind: 'push'; change: PushChange }
  | { kind: 'event'; event: LifecycleEvent }
  | { kind: 'removed'; mediaSessionId: string }
  /** The worker holds nothing more of this stream: no publisher, no push. */
  | { kind: 'idle'; stream: string }
  | { kind: 'status'; load: ThreadLoad; pushes: PlaneStatus['pushes'] }
  | { kind: 'child'; op: 'add' | 'remove'; pid: number };

export function toWire(error: unknown): WireError {
  if (error instanceof GatewayError) {
    return {
      name: error.name,
      message: error.message,
      code: error.code,
      field: error.field,
      retryAfterS: error.retryAfterS,
    };
  }
  return {
    name: error instanceof Error ? error.name : 'Error',
    message: error instanceof Error ? error.message : String(error),
  };
}

export function fromWire(wire: WireError): Error {
  if (wire.code) return new GatewayError(wire.code, wire.message, wire.field, wire.retryAfterS);
  return Object.assign(new Error(wire.message), { name: wire.name });
}
