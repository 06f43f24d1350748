import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { buildMediaCore, type MediaCore, type MediaCoreDependencies } from '../plane/core.js';
import { LocalPlane } from '../plane/local.js';
import type { MediaPlane } from '../plane/plane.js';
import type { HealthCounts } from '../http/routes/health.js';
import type { WorkerStarter } from '../plane/thread.js';
import { WorkerPlane, workerCount } from '../plane/workers.js';
import { ClusterPlane } from '../cluster/cluster-plane.js';
import { ClusterNode } from '../cluster/node.js';

/** Where a gateway's streams run, and what reaches them. */
export interface Planes {
  /** This gateway's own streams: this thread (`workers: 0`) or its worker threads. */
  own: MediaPlane;
  /** What the API calls: `own`, or in a cluster the plane that routes to the node holding a stream. */
  plane: MediaPlane;
  /** With `workers: 0`, the streams' objects in this thread (tests, embedding). */
  local?: MediaCore;
  node?: ClusterNode;
  cluster?: ClusterPlane;
  workers: number;
}

export type PlaneDependencies = MediaCoreDependencies & {
  /** How a worker thread starts: the built `worker.js` by default; run from the TypeScript sources, the caller's. */
  startWorker?: WorkerStarter;
};

/** The streams of a gateway in this thread, in worker threads, or across a cluster's nodes. */
export function buildPlanes(config: GatewayConfig, log: Logger, deps: PlaneDependencies): Planes {
  const workers = workerCount(config);
  if (workers > 0 && (deps.engine || deps.lookupHost))
    throw new Error('an engine or host lookup of the caller runs the streams in this thread: set workers to 0');
  const local = workers === 0 ? buildMediaCore(config, log, deps) : undefined;
  const own: MediaPlane = local
    ? new LocalPlane(local)
    : new WorkerPlane(config, log, {
        childRecord: deps.childRecord,
        startWorker: deps.startWorker,
        spawner: deps.spawner,
      });
  const node = config.cluster
    ? new ClusterNode(config.cluster, config.http_port, log.child({ component: 'cluster' }))
    : undefined;
  const cluster = node ? new ClusterPlane(own, node, log.child({ component: 'cluster' })) : undefined;
  return { own, plane: cluster ?? own, local, node, cluster, workers };
}

/** What `/health` and a node's heartbeat tell of a plane: its publishers, its pushes in every state, and whether it is loaded. */
export function healthCounts(plane: MediaPlane): HealthCounts {
  const status = plane.status();
  const transponders = Object.values(status.pushes).reduce<number>((sum, count) => sum + (count ?? 0), 0);
  return { publishers: status.publishers, transponders, overloaded: status.overloaded };
}
