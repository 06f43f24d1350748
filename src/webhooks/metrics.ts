import { Counter, Gauge, type Registry } from 'prom-client';
import type { WebhookCounters } from './dispatcher.js';

/** The webhooks' counters and queue, labelled by endpoint id (never its URL). */
export function webhookMetrics(registry: Registry, pending: () => number): WebhookCounters {
  const deliveries = new Counter({
    name: 'gateway_webhook_deliveries_total',
    help: 'Webhook deliveries ended, by endpoint id and result: delivered, failed (its attempts spent), dropped (the queue was full)',
    labelNames: ['endpoint', 'result'],
    registers: [registry],
  });
  const failedAttempts = new Counter({
    name: 'gateway_webhook_attempts_failed_total',
    help: 'Webhook requests that failed (error, timeout or a status other than 2xx), by endpoint id',
    labelNames: ['endpoint'],
    registers: [registry],
  });
  new Gauge({
    name: 'gateway_webhook_deliveries_queued',
    help: 'Webhook deliveries waiting, all endpoints',
    registers: [registry],
    collect() {
      this.set(pending());
    },
  });
  return {
    delivery: (endpoint, result) => deliveries.inc({ endpoint, result }),
    attemptFailed: (endpoint) => failedAttempts.inc({ endpoint }),
  };
}
