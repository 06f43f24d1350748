import type { Logger } from 'pino';

type Closer = () => void | Promise<void>;

/**
 * What a gateway opened, closed in reverse: each part hands over its closer as it is made, so a part
 * closes before whatever it was made from. One owner per resource; `close` runs once however often asked.
 */
export class Closers {
  readonly #closers: { name: string; close: Closer }[] = [];
  #closing: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  add(name: string, close: Closer): void {
    this.#closers.push({ name, close });
  }

  /** Runs every closer, the last added first; one that fails is logged and the others still run. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const { name, close } of this.#closers.reverse()) {
        try {
          await close();
        } catch (error) {
          this.log.error({ err: error, part: name }, 'closing a part of the gateway failed');
        }
      }
    })();
    return this.#closing;
  }
}
