import type { FastifyInstance } from 'fastify';
import type { Server as HttpsServer } from 'node:https';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { monotonicMs } from '../core/clock.js';
import { notFound } from '../core/errors.js';
import { ROOT } from '../core/paths.js';
import type { RouteTable } from '../http/route-table.js';
import type { HealthCounts } from '../http/routes/health.js';
import { createMetrics } from '../metrics/metrics.js';
import { checkReceiveBuffer, type MediaCore } from '../plane/core.js';
import type { PushCommands } from '../control/commands.js';
import type { MediaPlane } from '../plane/plane.js';
import { Shedder } from '../plane/shedder.js';
import { SnapshotQueue } from '../http/snapshot-queue.js';
import { ViewerHolds } from '../http/viewer-holds.js';
import type { Bucket, BucketError } from '../recordings/bucket.js';
import { RecordingLibrary } from '../recordings/library.js';
import { RecordHook } from '../recordings/record-hook.js';
import { recordingStore } from '../recordings/store.js';
import { createAccessControl, isLoopbackListen, type AccessControl } from '../security/access.js';
import type { KeptPushStore } from '../store/open.js';
import { Thumbnailer } from '../viewers/thumbnails.js';
import { createWebhooks } from '../webhooks/setup.js';
import { destinationCheckQueue } from './checks.js';
import { Closers } from './closers.js';
import { createHttp } from './http-server.js';
import { buildKeepers, withBucketReady } from './keepers.js';
import { buildPlanes, healthCounts, type PlaneDependencies } from './planes.js';
import { registerRoutes } from './routes.js';
import { buildSignaling } from './signaling.js';

export interface Gateway {
  app: FastifyInstance;
  /** HTTPS on `https_port`, beside HTTP on `http_port`; the caller listens on it. */
  secondary?: HttpsServer;
  /** Reads the certificate and key files again for new connections (SIGHUP); live ones go on. */
  reloadCertificates(): void;
  /** Where the streams run: this thread (`workers: 0`) or worker threads. */
  plane: MediaPlane;
  /** With `workers: 0`, the streams' objects in this thread (tests, embedding). */
  local?: MediaCore;
  /** Every route with the access it declared. */
  routes: RouteTable;
  /** The REST API's push commands; a `PushKeeper` when the gateway keeps pushes. */
  pushes: PushCommands;
  /** Reads the kept pushes, if any, to start them again as their streams publish: before listening. */
  open(): Promise<void>;
  /**
   * A node of a cluster: moves every stream to other nodes (`ClusterPlane.drain`), then asks every
   * SDK session to connect again elsewhere; resolves when done (once, however often asked).
   */
  drain(): Promise<{ moved: number; left: number }>;
  /** Ends every push and publisher, then the HTTP server. Idempotent. */
  close(): Promise<void>;
}

/**
 * What a caller may put in place of the real parts (with workers, only `childRecord`, `spawner` and `startWorker`: the others
 * stay in this thread), and the store of kept pushes when the gateway keeps them (`server.ts` opens it).
 */
export type GatewayDependencies = PlaneDependencies & {
  keptPushes?: KeptPushStore;
  /** Once a drain is over (`POST /rest-api/cluster/drain`): the process ends (`server.ts`). */
  afterDrain?: () => void;
};

function warnOpenPublishing(config: GatewayConfig, access: AccessControl, log: Logger): void {
  if (access.publishAuth.enabled || isLoopbackListen(config.http_host)) return;
  log.warn(
    'publishing needs no token (no publish_keys, publish_jwt_keys or publish_auth_url): ' +
      'anyone who reaches the gateway can publish, but not push',
  );
}

/** Thumbnails asked for at once: a round of that many streams is one ffmpeg per holder. */
const THUMBNAILS_AT_ONCE = 32;

/**
 * What the snapshot route may spend, and the thumbnails, taken in this process (the one with the
 * HTTP server) from the streams of the whole plane.
 */
function buildPictures(
  config: GatewayConfig,
  plane: MediaPlane,
  log: Logger,
  bucket: Bucket | undefined,
): { snapshots: SnapshotQueue; thumbnails: Thumbnailer } {
  const snapshots = new SnapshotQueue(
    (name) => plane.snapshot(name),
    config.limit_snapshot_decoders,
    config.limit_snapshot_queue,
  );
  const thumbnails = new Thumbnailer(
    // Straight to the plane, every stream's at once: each holder decodes them together, one ffmpeg at a time.
    { streams: () => plane.streams(), snapshot: (name) => plane.snapshot(name, config.thumbnail_width) },
    {
      intervalS: config.thumbnail_interval_s,
      streams: config.thumbnail_streams,
      dir: resolve(ROOT, config.thumbnail_dir),
      naming: config.thumbnail_naming,
      keep: config.thumbnail_keep,
      concurrency: THUMBNAILS_AT_ONCE,
      ...(config.thumbnail_upload && bucket
        ? {
            bucket: {
              put: (file, jpeg) => bucket.put(bucket.key(`thumbnails/${file}`), jpeg, 'image/jpeg'),
              remove: (file) => bucket.remove(bucket.key(`thumbnails/${file}`)),
            },
          }
        : {}),
    },
    log.child({ component: 'thumbnails' }),
  );
  thumbnails.start();
  return { snapshots, thumbnails };
}

/**
 * Composes the gateway from its parts, each made once and closed by the list it hands its closer to:
 * in reverse, so the parts that follow the plane's events (webhooks, recordings) hear its last ones,
 * and the HTTP server ends last. Owns nothing process-wide.
 */
export function buildGateway(config: GatewayConfig, log: Logger, deps: GatewayDependencies = {}): Gateway {
  const access = createAccessControl(config);
  warnOpenPublishing(config, access, log);
  checkReceiveBuffer(config, log);
  const closers = new Closers(log);
  const http = createHttp(config, log, access.guard);
  closers.add('http', () => http.close());
  const planes = buildPlanes(config, log, deps);
  const { own, plane, node, cluster } = planes;
  // Each node keeps its own metrics (Prometheus scrapes every node), read from its own plane.
  const metrics = createMetrics(own);
  const webhooks = createWebhooks(config, plane, metrics, log, node?.id);
  closers.add('webhooks', () => webhooks.close());
  const checks = destinationCheckQueue(config, deps);
  closers.add('destination checks', () => checks.close());
  // Run for each part this node finished (once uploaded, with `record_s3`).
  const recordHook = RecordHook.fromConfig(config, resolve(ROOT, config.record_dir), log);
  // This node's recordings: the files are on its disk, the parts being written are its own plane's;
  // with `record_s3`, each finished part goes to the bucket.
  const store = recordingStore(config, metrics, (event) => webhooks.send(event), log, recordHook);
  const recordings = RecordingLibrary.fromConfig(config, log, store, recordHook);
  closers.add('recordings', () => recordings.close());
  // Closed before the recordings: an upload whose hook runs waits for it, and its run is killed.
  if (recordHook) closers.add('record hook', () => recordHook.close());
  // A viewer's end is heard from whichever thread or node holds it.
  const viewerHolds = new ViewerHolds(
    cluster ? (listener) => cluster.watchEvents(listener) : (listener) => plane.events(listener),
  );
  closers.add('viewer holds', () => viewerHolds.close());
  closers.add(
    'recording events',
    own.events((event) => recordings.follow(event)),
  );
  closers.add('plane', () => plane.close());
  const keepers = withBucketReady(buildKeepers(config, planes, deps.keptPushes, log), store?.bucket);
  closers.add('keepers', () => keepers.close());
  // One decision for the machine: every worker thread's pushes, through this node's own plane.
  const shedder = new Shedder(own, { floor: config.shed_min_pushes }, log.child({ component: 'shedder' }));
  closers.add('shedder', () => shedder.close());
  const signaling = buildSignaling(config, planes, access, checks.check, deps.lookupHost, log);
  closers.add('signalling', () => signaling.close());
  const { snapshots, thumbnails } = buildPictures(config, plane, log, store?.bucket);
  closers.add('thumbnails', () => thumbnails.close());

  const counts = (): HealthCounts => healthCounts(plane);
  let draining: Promise<{ moved: number; left: number }> | undefined;
  const drain = (): Promise<{ moved: number; left: number }> => {
    if (!cluster || !config.cluster)
      return Promise.reject(notFound('this gateway is not in a cluster (cluster: null)'));
    const timeoutMs = config.cluster.drain_timeout_ms;
    // The SDK sessions first: each connects again at once through another node and publishes
    // there, the stream handed over by this node; then whatever is left here is moved.
    draining ??= cluster.node
      .startDraining()
      .then(() => signaling.server.drain())
      .then(() => cluster.drain(monotonicMs() + timeoutMs));
    return draining;
  };
  const { captionFlood } = signaling;
  registerRoutes(http.app, {
    ...{ config, log, planes, access, metrics, keepers, check: checks.check, recordings, viewerHolds, captionFlood },
    ...{ snapshots, thumbnails },
    counts,
    startDrain: () =>
      void drain().then(
        () => deps.afterDrain?.(),
        (error: Error) => log.error({ err: error }, 'drain failed'),
      ),
  });
  for (const server of [http.app.server, http.secondary])
    server?.on('upgrade', (request, socket, head) => signaling.server.handleUpgrade(request, socket, head));

  return {
    ...http,
    plane,
    local: planes.local,
    pushes: keepers.pushes,
    drain,
    async open() {
      // A bucket that cannot be used is found now, not at the end of an hour's recording.
      await store?.bucket.check().catch((error: BucketError) => {
        throw new Error(`${error.field}: ${error.message}`, { cause: error });
      });
      // Before anything can record: a recording an earlier run left unfinished is put in order.
      await recordings.start();
      await node?.start(() => {
        const { overloaded, ...load } = counts();
        return { ...load, ...(overloaded ? { overload: 'overloaded' } : {}) };
      });
      await keepers.open();
    },
    close: () => closers.close(),
  };
}
