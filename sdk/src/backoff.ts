/** How the SDK comes back after its connection to the gateway drops. */
export interface ReconnectPolicy {
  /** The first wait, ms. */
  initialDelayMs: number;
  /** The longest wait, ms. */
  maxDelayMs: number;
  /** Each wait is this many times the one before. */
  factor: number;
  /** Attempts before giving up; 0: never give up. */
  maxAttempts: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 10_000,
  factor: 2,
  maxAttempts: 0,
};

/**
 * The wait before reconnect attempt `attempt` (1, 2, ...): growing by `factor` up to `maxDelayMs`,
 * plus up to 25 % at random so that pages cut off together do not all come back in the same moment.
 * `random` is a number in [0, 1).
 */
export function reconnectDelay(policy: ReconnectPolicy, attempt: number, random: number): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + 0.25 * random));
}

/** Whether attempt `attempt` may be made. */
export function mayReconnect(policy: ReconnectPolicy, attempt: number): boolean {
  return policy.maxAttempts === 0 || attempt <= policy.maxAttempts;
}
