import type { PushState } from '../pushes/states.js';
import type { LoadSample } from '../core/load.js';
import type { PushChange } from '../pushes/changes.js';
import type { LifecycleEvent } from './lifecycle.js';
import type { RoutedCalls } from './methods.js';

/** What the plane tells of one publish, in order: publishing once connected, closed once. */
export interface PublishHandlers {
  publishing?(): void;
  /** `lost`: the publisher went away (connection gone, page closed) rather than ending on purpose. */
  closed?(reason: string, lost: boolean): void;
}

/** A publish or a view as started: its id, and the SDP answer to send back. */
export interface Negotiated {
  id: string;
  answer: string;
}

/** The load of one thread that runs streams (a worker thread, or the main thread with `workers: 0`). */
export interface ThreadLoad extends LoadSample {
  /** The worker's index, or `main`. */
  thread: string;
  publishers: number;
  /** A worker thread's tracked maps and their sizes (`tracked.ts`); the main thread's are read there. */
  tracked?: Record<string, number>;
  /** Why it takes no new work now, or undefined. */
  overload?: string;
}

/** Counts for `/health` and `/metrics`. */
export interface PlaneStatus {
  publishers: number;
  pushes: Partial<Record<PushState, number>>;
  /** True when no thread takes a new publish now. */
  overloaded: boolean;
  threads: ThreadLoad[];
}

/**
 * Where streams run, behind one interface: the HTTP routes and the SDK's signalling speak only to
 * this. A stream (its publisher and every push of it) lives in one holder, a thread or a node of a
 * cluster; the plane routes each request to the holder of the stream or the push, and gathers
 * `find` from all. `LocalPlane` runs them in this thread, `WorkerPlane` spreads them over worker
 * threads, `ClusterPlane` routes the same requests to the other nodes. The calls routed to one
 * holder are declared once, in `HOLDER_METHODS` (`methods.ts`).
 */
export interface MediaPlane extends RoutedCalls {
  /** Starts a publish from an SDP offer; resolves with the publisher's id and the SDP answer. */
  publish(name: string, offer: string, handlers?: PublishHandlers, clientAddress?: string): Promise<Negotiated>;
  /** Follows every push's state changes (the SDK sessions, the console); returns the function that stops following. */
  watch(listener: (change: PushChange) => void): () => void;
  /** Follows what happens to every stream and push (for webhooks); returns the function that stops following. */
  events(listener: (event: LifecycleEvent) => void): () => void;
  status(): PlaneStatus;
  /** Ends every stream, then the threads that run them. Idempotent. */
  close(): Promise<void>;
  /** Kills every ffmpeg still running at once: the process's last moments. */
  killChildren(): void;
}
