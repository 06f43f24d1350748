import { unavailable } from '../core/errors.js';
import {
  HOLDER_METHODS,
  oldestFirst,
  type ArgsOf,
  type HolderMethod,
  type ResultOf,
  type RouteTo,
  type RoutedMethod,
} from './methods.js';
import type { WorkerThread } from './thread.js';

/**
 * Which worker thread a call goes to: the one holding its stream, push or mixer (each thread knows
 * what it holds), else any; a new stream goes to the least busy thread that is not overloaded, and
 * stays there while the thread holds anything of it. One thread holds a stream or a push at a time:
 * a thread that takes one takes it from the others.
 */
export class ThreadRouter {
  /** The threads by index; a dead one keeps its index until it is started again. */
  readonly #threads: WorkerThread[] = [];

  /** Takes `thread` at its index, instead of the dead one there. */
  set(thread: WorkerThread): void {
    this.#threads[thread.index] = thread;
  }

  /** Every thread, dead ones too (their loads as they last told them). */
  get all(): readonly WorkerThread[] {
    return this.#threads;
  }

  alive(): WorkerThread[] {
    return this.#threads.filter((thread) => thread.alive);
  }

  any(): WorkerThread {
    const thread = this.#threads.find((t) => t.alive);
    if (!thread) throw unavailable('no media worker is running', 3);
    return thread;
  }

  /** Sends a routed call to the thread its route names (see `Route`), or to every thread. */
  async route<M extends RoutedMethod>(method: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    const route = HOLDER_METHODS[method].route;
    if (route.to === 'own') throw new Error(`${method} is not routed`);
    const key = (route.key as (args: unknown[]) => string | undefined)(args);
    const call = (thread: WorkerThread): Promise<unknown> =>
      (thread.call as (m: HolderMethod, ...a: unknown[]) => Promise<unknown>)(method, ...args);
    if (route.to === 'gather' && key === undefined) {
      return oldestFirst(await Promise.all(this.alive().map(call))) as ResultOf<M>;
    }
    const held = key === undefined ? undefined : this.holder(route.to, key);
    return (await call(held ?? this.any())) as ResultOf<M>;
  }

  /** The living thread that holds `key`: a push's session, a mixer's URI, else a stream's name. */
  holder(to: RouteTo, key: string): WorkerThread | undefined {
    return this.#threads.find(
      (thread) =>
        thread.alive &&
        (to === 'session' ? thread.hasSession(key) : to === 'mixer' ? thread.mixer(key) : thread.holds(key)),
    );
  }

  /**
   * The thread for a new publish of `name`: the one holding it, else the least busy that is not
   * overloaded (the one with the fewest streams; for a mixer's stream, with the fewest mixers first).
   */
  threadFor(name: string, mixer = false): WorkerThread {
    const held = this.holder('stream', name);
    if (held) return held;
    const alive = this.alive();
    const open = alive.filter((thread) => !thread.load.overload);
    if (!open.length) {
      const reason = alive[0]?.load.overload ?? 'no media worker is running';
      throw unavailable(
        `the gateway is overloaded (${reason}): publishing ${name} refused, the streams running keep their share`,
        3,
      );
    }
    const mixers = (thread: WorkerThread): number => (mixer ? thread.mixerCount : 0);
    return open.reduce((best, t) =>
      mixers(t) < mixers(best) || (mixers(t) === mixers(best) && t.streamCount < best.streamCount) ? t : best,
    );
  }

  /** Runs `call` with stream `name` held by `thread`, which takes it from any other. */
  hold<T>(name: string, thread: WorkerThread, call: () => Promise<T>): Promise<T> {
    for (const other of this.#threads) if (other !== thread) other.release(name);
    return thread.holding(name, call);
  }

  /** `thread` told of the push `mediaSessionId` running: it is the push's holder now. */
  sessionAt(mediaSessionId: string, thread: WorkerThread): void {
    for (const other of this.#threads) if (other !== thread) other.releaseSession(mediaSessionId);
  }
}
