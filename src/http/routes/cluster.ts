import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ClusterNode } from '../../cluster/node.js';
import { notFound, unavailable } from '../../core/errors.js';
import type { ClusterPlane } from '../../cluster/cluster-plane.js';
import type { AuthFailureLimiter } from '../../security/auth-failures.js';
import { routeAccess } from '../guard.js';
import { parseBody } from '../../core/validation.js';
import { routedTo } from '../../plane/methods.js';
import type { MixerStartup } from '../../mixers/requests.js';

const CONTROL = routeAccess('control');
const sealedCall = z.strictObject({
  sealed: z
    .string()
    .min(1)
    .max(1 << 20),
});

/**
 * The cluster as this node sees it (`GET /rest-api/cluster/nodes`), and the calls of the other
 * nodes (`POST /internal/plane`: sealed with the cluster's secret, answered by this node's own plane).
 * A call that does not open, or is stale, replayed or meant for another node, counts as a failed
 * authentication of its address (`auth_failures_per_minute`).
 */
export function clusterRoutes(
  app: FastifyInstance,
  plane: ClusterPlane | undefined,
  failures: AuthFailureLimiter,
  startDrain: () => void,
): void {
  const node: ClusterNode | undefined = plane?.node;
  if (plane) {
    // What another node's calls are answered by: this node's own plane, but a mixer started for
    // another node claims its stream here first, as a publish placed here does.
    const place = {
      ...routedTo(plane.inner),
      mixerStartup: (startup: MixerStartup) => plane.mixerStartupHere(startup),
    };
    const own = {
      publish: (from: string, name: string, offer: string, clientAddress?: string) =>
        plane.publishFor(from, name, offer, clientAddress),
      handOver: (name: string) => plane.handOver(name),
    };
    // A placed publish carries its offer, sealed: more than a REST body.
    app.post('/internal/plane', { ...routeAccess('node'), logLevel: 'warn', bodyLimit: 1 << 20 }, async (request) => {
      const sealed = await failures.attempt(request.ip, () =>
        plane.calls.answer(place, parseBody(sealedCall, request.body).sealed, own),
      );
      return { sealed };
    });
  }
  app.get('/rest-api/cluster/nodes', CONTROL, async () => {
    if (!node) throw notFound('this gateway is not in a cluster (cluster: null)');
    let nodes;
    try {
      nodes = await node.registry.list();
    } catch (error) {
      throw unavailable(`the cluster's Redis cannot be reached (${(error as Error).message})`);
    }
    return { node: node.id, nodes };
  });

  // A rolling deploy: the node moves its streams to the others, then exits. Answered at once.
  app.post('/rest-api/cluster/drain', CONTROL, async (_request, reply) => {
    if (!node) throw notFound('this gateway is not in a cluster (cluster: null)');
    startDrain();
    return reply.code(202).send({ node: node.id, draining: true });
  });
}
