import { trackSize } from '../core/tracked.js';
import { tooMany, unavailable } from '../core/errors.js';

/** A quota's bounds and the configuration keys that set them (named in refusals). */
export interface QuotaLimits {
  /** Sessions from one client address; unbounded when absent. */
  perClient?: number;
  perClientKey?: string;
  /** Sessions from every client together; unbounded when absent. */
  total?: number;
  totalKey?: string;
}

/**
 * Concurrent sessions per client address, and in total: WHIP sessions, SDK WebSockets and the
 * streams they publish, console event streams. `acquire` answers a release function that is safe to
 * call more than once; past a client's bound it throws 429, past the total 503.
 */
export class ClientQuota {
  readonly #counts = new Map<string, number>();
  #total = 0;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: ClientQuota): void {
    trackSize('client_quota_addresses', owner, (self) => self.#counts.size);
  }

  constructor(private readonly limits: QuotaLimits) {
    ClientQuota.#trackSizes(this);
  }

  acquire(client: string, what: string): () => void {
    const count = this.#counts.get(client) ?? 0;
    if (this.limits.perClient !== undefined && count >= this.limits.perClient) {
      throw tooMany(
        `this address already has ${count} concurrent sessions (${this.limits.perClientKey}): ${what} refused`,
      );
    }
    if (this.limits.total !== undefined && this.#total >= this.limits.total) {
      throw unavailable(
        `the gateway already has ${this.#total} concurrent sessions of this kind (${this.limits.totalKey}): ${what} refused`,
      );
    }
    this.#counts.set(client, count + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#counts.get(client) ?? 1) - 1;
      if (left > 0) this.#counts.set(client, left);
      else this.#counts.delete(client);
    };
  }

  count(client: string): number {
    return this.#counts.get(client) ?? 0;
  }
}
