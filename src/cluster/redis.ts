import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** A Redis URL as it may be logged: its password, if any, masked. */
export function redactedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(not a URL)';
  }
}

/**
 * A connection to the cluster's Redis. Commands fail at once while it is down (no queue that would
 * replay stale heartbeats or claims later); it reconnects by itself, every 0.2-2 s. Its state
 * changes are logged once each, with the URL's password masked.
 */
export function connectRedis(url: string, name: string, log: Logger): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 2000,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(200 * attempt, 2000),
  });
  let down: string | undefined;
  redis.on('error', (error: Error) => {
    if (down === error.message) return;
    down = error.message;
    log.warn({ redis: redactedRedisUrl(url), reason: error.message }, 'Redis unreachable');
  });
  redis.on('ready', () => {
    if (down !== undefined) log.info({ redis: redactedRedisUrl(url) }, 'Redis reachable again');
    down = undefined;
  });
  return redis;
}

/** Resolves once `redis` is connected, or false after `timeoutMs` (it goes on trying). */
export function whenReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    redis.once('ready', onReady);
  });
}
