import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { CaptionFlood } from '../captions/flood.js';
import type { GatewayConfig } from '../config/schema.js';
import { ROOT } from '../core/paths.js';
import type { SnapshotQueue } from '../http/snapshot-queue.js';
import type { ViewerHolds } from '../http/viewer-holds.js';
import { clusterRoutes } from '../http/routes/cluster.js';
import { consoleRoutes } from '../http/routes/console.js';
import { docsRoutes } from '../http/routes/docs.js';
import { healthRoutes, type HealthCounts } from '../http/routes/health.js';
import { mixerRoutes } from '../http/routes/mixer.js';
import { pushRoutes } from '../http/routes/push.js';
import { recordingRoutes } from '../http/routes/recording.js';
import { staticRoutes } from '../http/routes/static.js';
import { streamRoutes } from '../http/routes/stream.js';
import { whepRoutes } from '../http/routes/whep.js';
import { whipRoutes } from '../http/routes/whip.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import type { RecordingLibrary } from '../recordings/library.js';
import type { Thumbnailer } from '../viewers/thumbnails.js';
import type { AccessControl } from '../security/access.js';
import type { Check } from './checks.js';
import type { Keepers } from './keepers.js';
import type { Planes } from './planes.js';

/** What the routes call. */
export interface RouteParts {
  config: GatewayConfig;
  log: Logger;
  planes: Planes;
  access: AccessControl;
  metrics: Registry;
  keepers: Keepers;
  check: Check;
  recordings: RecordingLibrary;
  viewerHolds: ViewerHolds;
  captionFlood: CaptionFlood;
  /** What snapshots may spend, shared by the snapshot route and the thumbnails. */
  snapshots: SnapshotQueue;
  thumbnails: Thumbnailer;
  counts: () => HealthCounts;
  /** `POST /rest-api/cluster/drain`: answered at once, the drain going on. */
  startDrain: () => void;
}

/** Every route, declared once the OpenAPI plugin is loaded so that it sees each of them. */
export function registerRoutes(app: FastifyInstance, parts: RouteParts): void {
  const { config, planes, access } = parts;
  const { plane, cluster } = planes;
  // In a cluster the console's event log shows every node's events, each with its node.
  const watchEvents = cluster
    ? (listener: (event: LifecycleEvent, node: string) => void) => cluster.watchEvents(listener)
    : undefined;
  app.after((error) => {
    if (error) throw error;
    pushRoutes(app, plane, parts.keepers.pushes, parts.check);
    mixerRoutes(app, plane, parts.keepers.mixers);
    recordingRoutes(app, parts.recordings);
    streamRoutes(app, plane, parts.snapshots, parts.thumbnails, parts.captionFlood);
    docsRoutes(app);
    consoleRoutes(
      app,
      plane,
      resolve(ROOT, config.media_dir),
      access.consoleStreams,
      parts.log.child({ component: 'console' }),
      watchEvents,
      config.thumbnail_interval_s,
    );
    whipRoutes(app, plane, access);
    whepRoutes(app, plane, access, parts.viewerHolds);
    staticRoutes(app);
    healthRoutes(app, parts.counts, parts.metrics, planes.workers);
    clusterRoutes(app, cluster, access.guard.failures, parts.startDrain);
  });
}
