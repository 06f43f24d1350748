import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from '../config/schema.js';
import type { MediaPlane } from '../plane/plane.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import { readSecret } from '../security/secrets.js';
import { WebhookDispatcher } from './dispatcher.js';
import { webhookMetrics } from './metrics.js';

/** How long shutdown waits for the last deliveries (a push's `stopped`) before it aborts them. */
const DRAIN_MS = 2000;

/**
 * The configured webhooks, told of every event of the plane; `close` gives queued deliveries a
 * moment. In a cluster, `node` names this node in each delivery.
 */
export function createWebhooks(
  config: GatewayConfig,
  plane: MediaPlane,
  registry: Registry,
  log: Logger,
  node?: string,
): { send(event: LifecycleEvent): void; close(): Promise<void> } {
  if (!config.webhooks.length) return { send: () => {}, close: async () => {} };
  const endpoints = config.webhooks.map((w, i) => ({
    id: w.id,
    url: w.url,
    events: w.events,
    secret: readSecret(w, `webhooks[${i}]`),
    timeoutMs: w.timeout_ms,
    maxAttempts: w.max_attempts,
    queueLimit: w.queue_limit,
  }));
  let dispatcher: WebhookDispatcher | undefined;
  const counters = webhookMetrics(registry, () => dispatcher?.pending ?? 0);
  dispatcher = new WebhookDispatcher(endpoints, counters, log, Math.random, node);
  const stop = plane.events((event) => dispatcher.send(event));
  return {
    /** An event of this node's own, not the plane's (a recording's upload). */
    send: (event) => dispatcher.send(event),
    async close() {
      stop();
      await dispatcher.drain(DRAIN_MS);
    },
  };
}
