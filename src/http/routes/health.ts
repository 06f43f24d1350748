import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { routeAccess } from '../guard.js';
import { z } from 'zod';
import { binary, failures } from '../openapi.js';

/** What `/health` tells a load balancer or a probe. */
export interface HealthCounts {
  publishers: number;
  /** Pushes in every state. */
  transponders: number;
  /** New publishes are refused (503) while true; a load balancer can send them elsewhere. */
  overloaded: boolean;
}

const HEALTH = {
  summary: 'Liveness and load',
  response: {
    200: z
      .object({
        status: z.literal('ok'),
        publishers: z.number(),
        transponders: z.number(),
        overloaded: z.boolean(),
        workers: z.number(),
      })
      .describe('Up'),
  },
};

const METRICS = {
  summary: 'Prometheus metrics',
  response: { 200: binary('Prometheus text format', 'text/plain'), ...failures(401) },
};

/** `/health` and `/metrics`: probes and scrapes are frequent, so they are kept out of the info log. */
export function healthRoutes(
  app: FastifyInstance,
  counts: () => HealthCounts,
  metrics: Registry,
  workers: number,
): void {
  app.get('/health', { ...routeAccess('public'), logLevel: 'warn', schema: HEALTH }, async () => ({
    status: 'ok',
    ...counts(),
    workers,
  }));
  app.get('/metrics', { ...routeAccess('metrics'), logLevel: 'warn', schema: METRICS }, async (_request, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  );
}
