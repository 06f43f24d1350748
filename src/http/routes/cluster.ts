import type { FastifyInstance } from 'fastify';
import type { ClusterNode } from '../../cluster/node.js';
import { notFound, unavailable } from '../../errors.js';
import { routeAccess } from '../guard.js';

const CONTROL = routeAccess('control');

/** The cluster as this node sees it: `GET /rest-api/cluster/nodes`. */
export function clusterRoutes(app: FastifyInstance, node: ClusterNode | undefined): void {
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
}
