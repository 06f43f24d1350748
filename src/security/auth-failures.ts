import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
import { GatewayError, tooMany } from '../core/errors.js';

const WINDOW_MS = 60_000;
/** Client addresses remembered at most; the oldest is forgotten first (memory stays bounded). */
const MAX_CLIENTS = 10_000;

/**
 * Failed authentications per client address over the last minute. Past the limit the client is
 * answered 429 before its credentials are even looked at, until the minute has passed.
 */
export class AuthFailureLimiter {
  readonly #failures = new Map<string, number[]>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: AuthFailureLimiter): void {
    trackSize('auth_failure_addresses', owner, (self) => self.#failures.size);
  }

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = monotonicMs,
  ) {
    AuthFailureLimiter.#trackSizes(this);
  }

  /** Throws 429 when `client` failed too often in the last minute. */
  check(client: string): void {
    const recent = this.#recent(client);
    if (recent.length >= this.perMinute) {
      const retryAfterS = Math.max(1, Math.ceil((recent[0]! + WINDOW_MS - this.now()) / 1000));
      throw tooMany(`too many failed authentications from this address: try again in ${retryAfterS} s`, retryAfterS);
    }
  }

  /**
   * Runs one authentication for `client`: refused with 429 first when it failed too often, and
   * counted as a failure when it is refused (401, or what `refused` says).
   */
  async attempt<T>(
    client: string,
    authenticate: () => T | Promise<T>,
    refused: (error: GatewayError) => boolean = (e) => e.code === 'unauthorized',
  ): Promise<T> {
    this.check(client);
    try {
      return await authenticate();
    } catch (error) {
      if (error instanceof GatewayError && refused(error)) this.record(client);
      throw error;
    }
  }

  record(client: string): void {
    const recent = this.#recent(client);
    recent.push(this.now());
    this.#failures.delete(client);
    this.#failures.set(client, recent);
    if (this.#failures.size > MAX_CLIENTS) this.#failures.delete(this.#failures.keys().next().value!);
  }

  #recent(client: string): number[] {
    const since = this.now() - WINDOW_MS;
    const recent = (this.#failures.get(client) ?? []).filter((t) => t > since);
    if (recent.length === 0) this.#failures.delete(client);
    return recent;
  }
}
