import { monotonicMs } from './core/clock.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './core/paths.js';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/schema.js';
import { ConfigError } from './config/load.js';
import { GatewayError, notFound } from './core/errors.js';
import { clientErrorHandler, frameworkErrors, installErrorReplies } from './http/error-replies.js';
import { installGuard, routeAccess } from './http/guard.js';
import { ROUTER_OPTIONS, RouteTable } from './http/route-table.js';
import { installRouteSchemas } from './http/route-schemas.js';
import { HEALTH, installOpenApi, METRICS } from './http/openapi.js';
import { SnapshotQueue } from './http/snapshot-queue.js';
import { WorkQueue } from './http/work-queue.js';
import { ViewerHolds } from './http/viewer-holds.js';
import { mixerRoutes } from './http/routes/mixer.js';
import { MixerKeeper } from './control/mixer-keeper.js';
import { planeMixerCommands, planePushCommands, type PushCommands } from './control/commands.js';
import { pushRoutes } from './http/routes/push.js';
import { whepRoutes } from './http/routes/whep.js';
import { recordingRoutes } from './http/routes/recording.js';
import { RecordingLibrary } from './recordings/library.js';
import { Rooms } from './control/rooms.js';
import { Shedder } from './plane/shedder.js';
import { streamRoutes } from './http/routes/stream.js';
import { docsRoutes } from './http/routes/docs.js';
import { consoleRoutes } from './http/routes/console.js';
import { SignalingServer } from './signaling/server.js';
import { staticRoutes } from './http/routes/static.js';
import { whipRoutes } from './http/routes/whip.js';
import { createMetrics } from './metrics/metrics.js';
import { buildMediaCore, checkReceiveBuffer, type MediaCore, type MediaCoreDependencies } from './plane/core.js';
import { checkSettings, destinationChecks } from './control/destination-checks.js';
import { spawnerConnection } from './ffmpeg/spawner-client.js';
import { FfmpegSupervisor } from './ffmpeg/supervisor.js';
import { checkDestination, type CheckReport, type CheckRequest } from './outputs/check.js';
import { LocalPlane } from './plane/local.js';
import type { MediaPlane } from './plane/plane.js';
import type { LifecycleEvent } from './plane/lifecycle.js';
import { WorkerPlane, workerCount, type WorkerStarter } from './plane/workers.js';
import { createWebhooks } from './webhooks/setup.js';
import { createAccessControl, isLoopbackListen } from './security/access.js';
import { PushKeeper } from './control/push-keeper.js';
import { ClusterPlane } from './cluster/cluster-plane.js';
import { ClusterNode } from './cluster/node.js';
import { clusterRoutes } from './http/routes/cluster.js';
import type { KeptPushStore } from './store/open.js';
import { clientAddressReader } from './security/client-address.js';
import { CaptionFlood } from './captions/flood.js';

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

/** REST bodies are small JSON objects; offers have their own limit (MAX_OFFER_BYTES). */
const REST_BODY_LIMIT = 64 * 1024;

/**
 * What a caller may put in place of the real parts (with workers, only `childRecord`, `spawner` and `startWorker`: the others
 * stay in this thread), and the store of kept pushes when the gateway keeps them (`server.ts` opens it).
 */
export type GatewayDependencies = MediaCoreDependencies & {
  /** How a worker thread starts: the built `worker.js` by default; run from the TypeScript sources, the caller's. */
  startWorker?: WorkerStarter;
  keptPushes?: KeptPushStore;
  /** Once a drain is over (`POST /rest-api/cluster/drain`): the process ends (`server.ts`). */
  afterDrain?: () => void;
};

function readCertificate(config: GatewayConfig): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(config.https_cert_file), key: readFileSync(config.https_key_file) };
  } catch (error) {
    throw new ConfigError(
      `https_cert_file / https_key_file: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** Composes the gateway: the plane where streams run, HTTP routes, signalling. Owns nothing process-wide. */
export function buildGateway(config: GatewayConfig, log: Logger, deps: GatewayDependencies = {}): Gateway {
  const access = createAccessControl(config);
  if (!access.publishAuth.enabled && !isLoopbackListen(config.http_host)) {
    log.warn(
      'publishing needs no token (no publish_keys, publish_jwt_keys or publish_auth_url): ' +
        'anyone who reaches the gateway can publish, but not push',
    );
  }
  checkReceiveBuffer(config, log);
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
  const plane: MediaPlane = cluster ?? own;
  // One decision for the machine: every worker thread's pushes, through this node's own plane.
  const shedder = new Shedder(own, { floor: config.shed_min_pushes }, log.child({ component: 'shedder' }));
  // Each node keeps its own metrics (Prometheus scrapes every node), read from its own plane.
  const metrics = createMetrics(own);
  const webhooks = createWebhooks(config, plane, metrics, log, node?.id);
  // A cluster keeps pushes in its Redis, which every node reads; a gateway on its own, in its data folder.
  const kept = node ? { store: node.store, sealer: node.sealer } : deps.keptPushes;
  // In a cluster, a push not live here may be live at the node holding its stream.
  const inCluster =
    node && config.cluster
      ? {
          streamHeld: async (stream: string): Promise<boolean> => (await node.claims.holder(stream)) !== undefined,
          nodesBackMs: config.cluster.node_timeout_ms,
        }
      : {};
  const keeper = kept
    ? new PushKeeper(
        plane,
        kept.store,
        kept.sealer,
        { windowMs: config.push_store_window_ms, ...inCluster },
        log.child({ component: 'kept-pushes' }),
      )
    : undefined;
  const pushes = keeper ?? planePushCommands(plane);
  // Mixers run within one node: kept in its data folder, on a gateway on its own.
  const mixerKeeper =
    deps.keptPushes && !node
      ? new MixerKeeper(plane, deps.keptPushes.mixersFile, log.child({ component: 'kept-mixers' }))
      : undefined;
  if (node && keeper) node.registry.onEmptied = () => void keeper.rewrite();

  const tls = config.https_cert_file ? readCertificate(config) : undefined;
  const secure: HttpsServer[] = [];
  let secondary: HttpsServer | undefined;
  const app: FastifyInstance = Fastify({
    // HTTP or HTTPS on http_port, and HTTPS on https_port too when set: one handler serves them all.
    serverFactory: (handler: RequestListener) => {
      // Header and request timeouts are enforced at each check: every second, not Node's 30 s.
      const options = { connectionsCheckingInterval: 1000 };
      const primary: Server =
        tls && !config.https_port
          ? createHttpsServer({ ...tls, ...options }, handler)
          : createHttpServer<typeof IncomingMessage, typeof ServerResponse>(options, handler);
      if (primary instanceof HttpsServer) secure.push(primary as HttpsServer);
      if (tls && config.https_port) secure.push((secondary = createHttpsServer({ ...tls, ...options }, handler)));
      for (const server of [primary, secondary]) {
        if (!server) continue;
        server.requestTimeout = config.http_request_timeout_ms;
        server.headersTimeout = config.http_headers_timeout_ms;
      }
      return primary;
    },
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: REST_BODY_LIMIT,
    routerOptions: ROUTER_OPTIONS,
    frameworkErrors,
    clientErrorHandler,
    trustProxy: config.trust_proxy,
  });
  const routes = new RouteTable();
  installGuard(app, access.guard, (route) => routes.add(route));
  installErrorReplies(app, routes);
  installRouteSchemas(app);
  installOpenApi(app);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    if (body === '') return done(null, {});
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new GatewayError('invalid_request', 'body: not valid JSON', 'body'), undefined);
    }
  });
  app.addContentTypeParser(
    ['application/sdp', 'application/trickle-ice-sdpfrag'],
    { parseAs: 'string' },
    (_request, body, done) => done(null, body),
  );

  // Destination checks run here, their ffmpeg (SRT) ended with the gateway.
  const checkFfmpeg = new FfmpegSupervisor(deps.childRecord, spawnerConnection(deps.spawner));
  const checks = checkSettings(config, checkFfmpeg, deps.lookupHost);
  // A check may start an ffmpeg (SRT): bounded in all and per client, the rest refused at once.
  const checkQueue = new WorkQueue({
    running: config.limit_checks,
    queue: config.limit_checks_queue,
    perCaller: config.limit_checks_per_client,
    what: 'destination checks',
    keys: { running: 'limit_checks', queue: 'limit_checks_queue', perCaller: 'limit_checks_per_client' },
  });
  const check = (request: CheckRequest, caller: string): Promise<CheckReport> =>
    checkQueue.run(caller, () => checkDestination(request, checks));
  // This node's recordings: the files are on its disk, the parts being written are its own plane's.
  const recordings = new RecordingLibrary(
    resolve(ROOT, config.record_dir),
    { maxAgeHours: config.record_retention_hours, maxMb: config.record_retention_max_mb },
    parseInt(config.record_file_mode, 8),
    log.child({ component: 'recordings' }),
  );
  const stopRecordingEvents = own.events((event) => recordings.follow(event));
  // Web Call Server's rooms: this node's callers (`user1#room1`) join their room's mixer, wherever it runs.
  // In a cluster a room's mixer starts at the node of its first caller, and the others are placed there.
  const rooms = config.mixer_auto_start
    ? new Rooms(
        plane,
        config.mixer_idle_timeout_ms,
        log.child({ component: 'rooms' }),
        cluster && ((startup) => cluster.mixerStartupHere(startup)),
      )
    : undefined;
  const stopRooms = rooms ? own.events((event) => rooms.follow(event)) : undefined;
  // Captions, over REST and the SDK together, per client address.
  const captionFlood = new CaptionFlood();
  const snapshots = new SnapshotQueue(
    (name) => plane.snapshot(name),
    config.limit_snapshot_decoders,
    config.limit_snapshot_queue,
  );
  // In a cluster the console's event log shows every node's events, each with its node.
  const watchEvents = cluster
    ? (listener: (event: LifecycleEvent, node: string) => void) => cluster.watchEvents(listener)
    : undefined;
  // A viewer's end is heard from whichever thread or node holds it.
  const viewerHolds = new ViewerHolds(
    cluster ? (listener) => cluster.watchEvents(listener) : (listener) => plane.events(listener),
  );
  const signaling = new SignalingServer(plane, destinationChecks(config, check, deps.lookupHost), access, log, {
    clientAddress: clientAddressReader(config.trust_proxy),
    maxSessions: config.limit_signaling_sessions,
    idleTimeoutMs: config.signaling_idle_timeout_ms,
    captionFlood,
    captionsChannel: config.webrtc_engine === 'mediasoup',
  });
  for (const server of [app.server, secondary])
    server?.on('upgrade', (request, socket, head) => signaling.handleUpgrade(request, socket, head));

  let draining: Promise<{ moved: number; left: number }> | undefined;
  const drain = (): Promise<{ moved: number; left: number }> => {
    if (!cluster || !config.cluster)
      return Promise.reject(notFound('this gateway is not in a cluster (cluster: null)'));
    const timeoutMs = config.cluster.drain_timeout_ms;
    draining ??= (async () => {
      // The SDK sessions first: each connects again at once through another node and publishes
      // there, the stream handed over by this node; then whatever is left here is moved.
      await cluster.node.startDraining();
      signaling.drain();
      return cluster.drain(monotonicMs() + timeoutMs);
    })();
    return draining;
  };
  // The routes are declared once the OpenAPI plugin is loaded, so that it sees every one of them.
  app.after((error) => {
    if (error) throw error;
    pushRoutes(app, plane, pushes, check);
    mixerRoutes(app, plane, mixerKeeper ?? planeMixerCommands(plane));
    recordingRoutes(app, recordings);
    streamRoutes(app, plane, snapshots, captionFlood);
    docsRoutes(app);
    consoleRoutes(
      app,
      plane,
      resolve(ROOT, config.media_dir),
      access.consoleStreams,
      log.child({ component: 'console' }),
      watchEvents,
    );
    whipRoutes(app, plane, access);
    whepRoutes(app, plane, access, viewerHolds);
    staticRoutes(app);
    // Probes and scrapes are frequent: keep them out of the info log.
    app.get('/health', { ...routeAccess('public'), logLevel: 'warn', schema: HEALTH }, async () => {
      const status = plane.status();
      return {
        status: 'ok',
        publishers: status.publishers,
        transponders: Object.values(status.pushes).reduce<number>((a, b) => a + (b ?? 0), 0),
        // New publishes are refused (503) while true; a load balancer can send them elsewhere.
        overloaded: status.overloaded,
        workers,
      };
    });
    app.get('/metrics', { ...routeAccess('metrics'), logLevel: 'warn', schema: METRICS }, async (_request, reply) =>
      reply.type(metrics.contentType).send(await metrics.metrics()),
    );
    clusterRoutes(app, cluster, access.guard.failures, () => {
      drain().then(
        () => deps.afterDrain?.(),
        (error: Error) => log.error({ err: error }, 'drain failed'),
      );
    });
  });

  let closing: Promise<void> | undefined;
  return {
    app,
    secondary,
    plane,
    local,
    routes,
    pushes,
    drain,
    async open() {
      // Before anything can record: a recording an earlier run left unfinished is put in order.
      await recordings.start();
      await node?.start(() => {
        const status = plane.status();
        const pushes = Object.values(status.pushes).reduce<number>((a, b) => a + (b ?? 0), 0);
        return {
          publishers: status.publishers,
          transponders: pushes,
          ...(status.overloaded ? { overload: 'overloaded' } : {}),
        };
      });
      await keeper?.open();
      // After the pushes: the kept pushes of a mixer's stream start again as soon as it publishes.
      await mixerKeeper?.open();
    },
    reloadCertificates() {
      const fresh = readCertificate(config);
      for (const server of secure) server.setSecureContext(fresh);
    },
    close() {
      closing ??= (async () => {
        signaling.close();
        // The callers' ends as the plane closes are not followed: their mixers end with it.
        stopRooms?.();
        rooms?.close();
        shedder.close();
        await keeper?.close(); // first: what the plane's closing ends is not forgotten
        await mixerKeeper?.close();
        await plane.close();
        stopRecordingEvents();
        viewerHolds.close();
        recordings.close();
        checkFfmpeg.killAll();
        await webhooks.close(); // after the plane: the pushes' last events are sent
        await app.close();
        if (secondary?.listening) await new Promise((done) => secondary!.close(done));
      })();
      return closing;
    },
  };
}
