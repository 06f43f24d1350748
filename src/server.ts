import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './config/load.js';
import { buildGateway, type Gateway, type GatewayDependencies } from './gateway/gateway.js';
import { createLogger, resolveLogFormat } from './core/log.js';
import { DEFAULT_CONFIG_FILE, ROOT } from './core/paths.js';
import { ChildRegistry } from './ffmpeg/child-registry.js';
import { SpawnerProcess } from './ffmpeg/spawner-client.js';
import { resolveIceAddresses } from './ingest/ice-addresses.js';
import { openFileStore } from './store/open.js';

/** What `make` makes, or the process ends with the configuration's error (status 2). */
async function exitOnConfigError<T>(make: () => T | Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

// V8's memory reducer, meant for a heap gone quiet, takes the media threads' steady stream of
// short-lived buffers for one: it ran a full mark-compact in each worker about every second (2-15 ms
// of pause, 10-40 ms of marking steps), from a heap of 25 MB. Without it, a worker's heap is
// collected when it grows. Set before the worker threads are made: each new isolate reads it.
setFlagsFromString('--no-memory-reducer');
// A heap collected when it is four times what was live after the last full collection, not 1.1
// times. V8 counts the Buffers' memory outside its heap against that limit, and a media thread's
// Buffers (RTP, frames, the start cache's few seconds) outlive its young generation: with the
// smallest factor V8 picks for a heap this small, each worker ran a full mark-compact every 1.5-3 s
// at 16 pushes (10-20 ms of pause and as much of marking steps). Now one every several seconds;
// a worker's heap and Buffers may grow to four times their live size between two.
setFlagsFromString('--heap-growing-percent=300');

/** The gateway once built, for ending its ffmpeg processes if starting fails. */
let running: Gateway | undefined;

/** Process concerns: configuration, listening, signals, and making sure no ffmpeg outlives us. */
async function main(deps: Pick<GatewayDependencies, 'startWorker'>): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });
  const file = values.config ?? process.env.GATEWAY_CONFIG ?? DEFAULT_CONFIG_FILE;
  const loaded = await exitOnConfigError(() => loadConfig(file));
  // Decided once, here: workers' stdout is never a terminal, and they log as the main thread does.
  const config = { ...loaded, log_format: resolveLogFormat(loaded.log_format) };
  const log = createLogger(config.log_level, undefined, config.log_format);
  const ice = resolveIceAddresses(config.webrtc_ice_addresses);
  if (ice.addresses.length === 0)
    await exitOnConfigError(() =>
      Promise.reject(
        new ConfigError(
          `invalid configuration: webrtc_ice_addresses: ${ice.unresolved}, and no other address is named`,
        ),
      ),
    );
  if (ice.unresolved)
    log.warn({ ice: ice.addresses }, `webrtc_ice_addresses: ${ice.unresolved}; only the others are announced`);
  // ffmpeg processes a gateway killed outright on this port left behind are ended before anything starts.
  const registryFile = join(resolve(ROOT, config.run_dir), `ffmpeg-${config.http_port}.json`);
  const reaped = ChildRegistry.reap(registryFile);
  if (reaped.length) log.warn({ pids: reaped }, 'ended ffmpeg processes left by a previous gateway');
  // Every ffmpeg is started by a small process of the gateway's own, so that no thread of the gateway forks.
  const spawner = new SpawnerProcess({
    onStop: (code) => log.error({ code }, 'the ffmpeg spawner stopped: starting it again'),
  });
  await spawner.ready;
  // A node of a cluster keeps its pushes in the cluster's Redis (`buildGateway` connects it).
  const keptPushes = config.cluster ? undefined : await exitOnConfigError(() => openFileStore(config, log));
  const gateway = await exitOnConfigError(() =>
    buildGateway(config, log, {
      ...deps,
      childRecord: new ChildRegistry(registryFile),
      spawner: spawner.address,
      keptPushes,
      afterDrain: () => shutdown('drained'),
    }),
  );
  running = gateway;
  await gateway.open();
  process.on('exit', () => gateway.plane.killChildren());
  let stopping = false;
  function shutdown(signal: string): void {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long: killing what is left');
      process.exit(1);
    }, 10_000);
    force.unref();
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  }
  // In a cluster, SIGTERM drains first (a rolling deploy): the streams move, then the node stops.
  // A second SIGTERM while draining stops at once.
  let drainingOnSignal = false;
  process.on('SIGTERM', () => {
    if (!config.cluster || stopping || drainingOnSignal) return shutdown('SIGTERM');
    drainingOnSignal = true;
    log.info('SIGTERM: draining before stopping');
    gateway.drain().then(
      () => shutdown('SIGTERM'),
      () => shutdown('SIGTERM'),
    );
  });
  process.on('SIGINT', () => shutdown('SIGINT'));
  // New certificates (a renewal) serve new connections; live streams and sockets go on.
  process.on('SIGHUP', () => {
    try {
      gateway.reloadCertificates();
      log.info('certificates reloaded');
    } catch (error) {
      log.error({ reason: (error as Error).message }, 'certificates not reloaded: keeping the current ones');
    }
  });

  const address = await gateway.app.listen({ host: config.http_host, port: config.http_port });
  const secondary = gateway.secondary;
  if (secondary) {
    await new Promise<void>((done, fail) =>
      secondary.once('error', fail).listen(config.https_port, config.http_host, done),
    );
  }
  log.info({ address, https: secondary ? config.https_port : undefined, ice: ice.addresses }, 'gateway listening');
}

/** Runs the gateway as this process; it ends the process when it cannot start. */
export function start(deps: Pick<GatewayDependencies, 'startWorker'> = {}): void {
  main(deps).catch((error: unknown) => {
    process.stderr.write(`gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    running?.plane.killChildren();
    process.exit(1);
  });
}

// The process's entry (`node dist/server/server.js`); imported, the importer starts it.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) start();
