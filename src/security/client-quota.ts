import { tooMany } from '../errors.js';

/**
 * Concurrent sessions per client address: WHIP sessions, SDK WebSockets and the streams they
 * publish. `acquire` answers a release function that is safe to call more than once.
 */
export class ClientQuota {
  readonly #counts = new Map<string, number>();

  constructor(private readonly perClient: number) {}

  acquire(client: string, what: string): () => void {
    const count = this.#counts.get(client) ?? 0;
    if (count >= this.perClient) {
      throw tooMany(`this address already has ${count} concurrent sessions (limit_sessions_per_client): ${what} refused`);
    }
    this.#counts.set(client, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#counts.get(client) ?? 1) - 1;
      if (left > 0) this.#counts.set(client, left);
      else this.#counts.delete(client);
    };
  }

  count(client: string): number {
    return this.#counts.get(client) ?? 0;
  }
}
