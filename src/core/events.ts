import { monotonicMs } from './clock.js';
import { EventEmitter } from 'node:events';

/** Told of a listener that threw: the emitter goes on with its other listeners. */
export type ListenerErrorHandler = (event: string, error: unknown) => void;

/**
 * A typed event emitter whose `safeEmit` isolates a throwing listener: one broken listener must
 * not tear down a publisher or a push that other listeners still depend on.
 */
export class TypedEmitter<Events extends Record<string, unknown[]>> {
  readonly #emitter = new EventEmitter();

  constructor(private readonly onListenerError: ListenerErrorHandler = () => {}) {
    this.#emitter.setMaxListeners(0);
  }

  on<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Heard before the listeners already there: for a listener that must see an event before what it causes. */
  prependListener<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.prependListener(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<E extends keyof Events & string>(event: E, listener: (...args: Events[E]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  protected safeEmit<E extends keyof Events & string>(event: E, ...args: Events[E]): void {
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (error) {
        this.onListenerError(event, error);
      }
    }
  }

  protected removeAllListeners(): void {
    this.#emitter.removeAllListeners();
  }
}

/** Asks `check` every 100 ms until it holds or `deadline` (epoch ms) passes; whether it held. */
export async function pollUntil(check: () => Promise<boolean>, deadline: number): Promise<boolean> {
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (monotonicMs() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
