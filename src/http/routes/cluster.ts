import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ClusterNode } from '../../cluster/node.js';
import { notFound, unavailable } from '../../core/errors.js';
import type { ClusterPlane } from '../../cluster/cluster-plane.js';
import type { AuthFailureLimiter } from '../../security/auth-failures.js';
import { routeAccess } from '../guard.js';
import { failures } from '../openapi.js';
import { nodeInfoSchema } from '../../cluster/nodes.js';
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
  authFailures: AuthFailureLimiter,
  startDrain: () => void,
): void {
  const node: ClusterNode | undefined = plane?.node;
  if (plane) {
    // What another node's calls are answered by: this node's own plane, but a mixer started for
    // another node claims its stream here first, as a publish placed here does.
    const holder = {
      ...routedTo(plane.inner),
      mixerStartup: (startup: MixerStartup) => plane.mixerStartupHere(startup),
    };
    const own = {
      publish: (from: string, name: string, offer: string, clientAddress?: string) =>
        plane.publishFor(from, name, offer, clientAddress),
      handOver: (name: string) => plane.handOver(name),
    };
    // A placed publish carries its offer, sealed: more than a REST body.
    app.withTypeProvider<ZodTypeProvider>().post(
      '/internal/plane',
      {
        ...routeAccess('node'),
        logLevel: 'warn',
        bodyLimit: 1 << 20,
        // An address refused too often is refused before its call's body is looked at.
        preValidation: async (request) => authFailures.check(request.ip),
        schema: {
          summary: "Another node's call, sealed with the cluster's secret (only between the nodes of a cluster)",
          body: sealedCall,
          response: { 200: sealedCall.describe("This node's answer, sealed"), ...failures(400, 401, 413, 429) },
        },
      },
      async (request) => {
        const sealed = await authFailures.attempt(request.ip, () =>
          plane.calls.answer(holder, request.body.sealed, own),
        );
        return { sealed };
      },
    );
  }
  const nodes = {
    summary: 'The nodes of the cluster alive now, with their load (404 when the gateway is not in a cluster)',
    response: {
      200: z
        .strictObject({ node: z.string(), nodes: z.array(nodeInfoSchema.extend({ heardAgoMs: z.number() })) })
        .describe("This node's id and every node's"),
      ...failures(401, 404, 503),
    },
  };
  app.get('/rest-api/cluster/nodes', { ...CONTROL, schema: nodes }, async () => {
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
  const drain = {
    summary:
      'Drains this node (a rolling deploy): it takes no new work, moves each stream to another node one at a ' +
      'time (the SDK publishes again there, its pushes follow), then exits; SIGTERM does the same in a cluster',
    response: {
      202: z.strictObject({ node: z.string(), draining: z.literal(true) }).describe('Draining'),
      ...failures(401, 404),
    },
  };
  app.post('/rest-api/cluster/drain', { ...CONTROL, schema: drain }, async (_request, reply) => {
    if (!node) throw notFound('this gateway is not in a cluster (cluster: null)');
    startDrain();
    return reply.code(202).send({ node: node.id, draining: true });
  });
}
