import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/schema.js';
import { ConfigError } from './config/load.js';
import { GatewayError, statusFor } from './errors.js';
import { installGuard } from './http/guard.js';
import { pushRoutes } from './http/routes/push.js';
import { SignalingServer } from './signaling/server.js';
import { staticRoutes } from './http/routes/static.js';
import { whipRoutes } from './http/routes/whip.js';
import type { IngestEngine } from './ingest/engine.js';
import { WeriftEngine } from './ingest/werift-engine.js';
import { createMetrics } from './metrics.js';
import { LoadMonitor } from './load.js';
import { ROOT } from './paths.js';
import { PublisherRegistry } from './publishers/registry.js';
import { FfmpegSupervisor, type ChildRecord } from './ffmpeg/supervisor.js';
import { rtmpsTrust } from './rtmp/trust.js';
import { createAccessControl, isLoopbackListen } from './security/access.js';
import { clientAddressReader } from './security/client-address.js';
import { DestinationPolicy, destinationResolver, type HostLookup } from './security/destination-policy.js';
import { lookupHost, TransponderService } from './transponders/service.js';

export interface Gateway {
  app: FastifyInstance;
  /** HTTPS on `https_port`, beside HTTP on `http_port`; the caller listens on it. */
  secondary?: HttpsServer;
  /** Reads the certificate and key files again for new connections (SIGHUP); live ones go on. */
  reloadCertificates(): void;
  publishers: PublisherRegistry;
  transponders: TransponderService;
  /** Every ffmpeg the gateway runs. */
  ffmpeg: FfmpegSupervisor;
  /** Ends every transponder and publisher, then the HTTP server. Idempotent. */
  close(): Promise<void>;
}

/** REST bodies are small JSON objects; offers have their own limit (MAX_OFFER_BYTES). */
const REST_BODY_LIMIT = 64 * 1024;

export function createEngine(config: GatewayConfig, log: Logger): IngestEngine {
  const granted = systemReceiveBufferMax();
  if (granted !== undefined && granted < config.webrtc_udp_receive_buffer_bytes) {
    log.warn(
      { wanted: config.webrtc_udp_receive_buffer_bytes, granted },
      'media sockets get a smaller receive buffer than webrtc_udp_receive_buffer_bytes: raise net.core.rmem_max (sysctl) for many streams',
    );
  }
  return new WeriftEngine({
    receiveBufferBytes: config.webrtc_udp_receive_buffer_bytes,
    addresses: config.webrtc_ice_addresses,
    portRange: [config.webrtc_ice_port_min, config.webrtc_ice_port_max],
    remoteNetworks: config.webrtc_ice_remote_networks,
    allowMdns: config.webrtc_ice_allow_mdns,
    connectTimeoutMs: config.webrtc_connect_timeout_ms,
    videoCodecs: config.webrtc_video_codecs,
    videoBitrateKbps: config.webrtc_video_bitrate_kbps,
    videoMinBitrateKbps: config.webrtc_video_min_bitrate_kbps,
    onListenerError: (event, error) => log.error({ err: error, event }, 'ingest listener failed'),
  });
}

/** The largest receive buffer the kernel grants a socket (Linux), if it can be read. */
function systemReceiveBufferMax(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Composes the gateway: domain services, HTTP routes, signalling. Owns nothing process-wide. */
export interface GatewayDependencies {
  engine?: IngestEngine;
  /** DNS for destination hosts; tests answer without the network. */
  lookupHost?: HostLookup;
  /** Where the PIDs of running ffmpeg processes are recorded (the server's `ChildRegistry`). */
  childRecord?: ChildRecord;
}

function readCertificate(config: GatewayConfig): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(config.https_cert_file), key: readFileSync(config.https_key_file) };
  } catch (error) {
    throw new ConfigError(`https_cert_file / https_key_file: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

export function buildGateway(config: GatewayConfig, log: Logger, deps: GatewayDependencies = {}): Gateway {
  const access = createAccessControl(config);
  if (!access.publishAuth.enabled && !isLoopbackListen(config.http_host)) {
    log.warn('publishing needs no token (no publish_keys, publish_jwt_keys or publish_auth_url): anyone who reaches the gateway can publish, but not push');
  }
  const engine = deps.engine ?? createEngine(config, log);
  const load = new LoadMonitor({
    eventLoopDelayMs: config.overload_event_loop_delay_ms,
    eventLoopUtilization: config.overload_event_loop_utilization,
    machineCpuPercent: config.overload_machine_cpu_percent,
  });
  const admit = (what: string): void => load.admit(what);
  const ffmpeg = new FfmpegSupervisor(deps.childRecord);
  const publishers = new PublisherRegistry(engine, {
    maxPublishers: config.limit_publishers,
    keyframeIntervalMs: config.webrtc_keyframe_interval_ms,
    mediaTimeoutMs: config.webrtc_media_timeout_ms,
    log,
    admit,
  });
  const transponders = new TransponderService(
    publishers,
    { prefix: config.rtmp_transponder_stream_name_prefix, fullUrl: config.rtmp_transponder_full_url },
    {
      ffmpegPath: config.ffmpeg_path,
      ffmpeg,
      mediaDir: resolve(ROOT, config.media_dir),
      encoding: {
        keepAspectRatio: config.transcoding_keep_aspect_ratio,
        transcodingEnabled: config.transcoding_enabled,
        videoBitrateKbps: config.transcoding_video_bitrate_kbps,
        preset: config.transcoding_preset,
        audioBitrateKbps: config.audio_bitrate_kbps,
        audioSampleRate: config.audio_sample_rate,
        keyframeIntervalS: config.webrtc_keyframe_interval_ms / 1000,
      },
      startTimeoutMs: config.ffmpeg_start_timeout_ms,
      stopTimeoutMs: config.ffmpeg_stop_timeout_ms,
      analyzeDurationUs: 200_000,
      connectTimeoutMs: 10_000,
      flashVer: config.rtmp_flash_ver_subscriber,
      localAddress: config.rtmp_publisher_ip || undefined,
      sendMetadata: config.rtmp_transponder_send_metadata,
      secureContext: createSecureContext({ ca: rtmpsTrust(config.rtmps_ca_file) }),
      resolveDestination: destinationResolver(
        deps.lookupHost ?? lookupHost,
        new DestinationPolicy({
          allowLoopback: config.destination_allow_loopback,
          allowPrivate: config.destination_allow_private,
          allowedHosts: config.destination_allowed_hosts,
          deniedHosts: config.destination_denied_hosts,
          allowedPorts: config.destination_allowed_ports,
        }),
      ),
      restore: {
        enabled: config.rtmp_push_restore,
        attempts: config.rtmp_push_restore_attempts,
        intervalMs: config.rtmp_push_restore_interval_ms,
      },
      stallTimeoutMs: config.rtmp_push_stall_timeout_ms,
      maxLagMs: config.rtmp_push_max_lag_ms,
      outBuffer: {
        enabled: config.rtmp_out_buffer_enabled,
        startMs: config.rtmp_out_buffer_start_size,
        maxMs: config.rtmp_out_buffer_initial_size,
        pollingMs: config.rtmp_out_buffer_polling_time,
        maxBufferings: config.rtmp_out_buffer_max_bufferings_allowed,
      },
      publisherGraceMs: config.rtmp_push_publisher_grace_ms,
      limits: { total: config.limit_transponders, perStream: config.limit_transponders_per_stream },
      admit,
    },
    log.child({ component: 'transponders' }),
    config.rtmp_push_auto_start ? config.rtmp_push_auto_start_url : undefined,
  );
  const metrics = createMetrics(publishers, transponders, load);

  const tls = config.https_cert_file ? readCertificate(config) : undefined;
  const secure: HttpsServer[] = [];
  let secondary: HttpsServer | undefined;
  const app: FastifyInstance = Fastify({
    // HTTP or HTTPS on http_port, and HTTPS on https_port too when set: one handler serves them all.
    serverFactory: (handler: RequestListener) => {
      // Header and request timeouts are enforced at each check: every second, not Node's 30 s.
      const options = { connectionsCheckingInterval: 1000 };
      const primary: Server = tls && !config.https_port ? createHttpsServer({ ...tls, ...options }, handler) : createHttpServer(options, handler);
      if (primary instanceof HttpsServer) secure.push(primary);
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
    // A 128-character stream name and a session id fit in a WHIP resource path.
    routerOptions: { maxParamLength: 256 },
    trustProxy: config.trust_proxy,
  });
  installGuard(app, access.guard);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    if (body === '') return done(null, {});
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new GatewayError('invalid_request', 'body: not valid JSON', 'body'), undefined);
    }
  });
  app.addContentTypeParser(['application/sdp', 'application/trickle-ice-sdpfrag'], { parseAs: 'string' }, (_request, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof GatewayError) {
      if (statusFor(error.code) >= 500) request.log.warn({ code: error.code, reason: error.message }, 'request failed');
      // RFC 6750: a token that was presented and refused is an invalid_token.
      if (error.code === 'unauthorized') reply.header('www-authenticate', `Bearer realm="gateway"${request.headers.authorization ? ', error="invalid_token"' : ''}`);
      if (error.retryAfterS !== undefined) reply.header('retry-after', String(error.retryAfterS));
      return reply.code(statusFor(error.code)).send({ error: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      const code = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request';
      const message = status === 413 ? 'body: larger than this route takes' : (error as Error).message;
      return reply.code(status).send({ error: code, message, field: 'body' });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));

  pushRoutes(app, transponders);
  whipRoutes(app, publishers, access);
  staticRoutes(app);
  // Probes and scrapes are frequent: keep them out of the info log.
  app.get('/health', { logLevel: 'warn' }, async () => ({
    status: 'ok',
    publishers: publishers.all().length,
    transponders: transponders.all().length,
    // New publishes and pushes are refused (503) while true; a load balancer can send them elsewhere.
    overloaded: load.overload !== undefined,
  }));
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  const signaling = new SignalingServer(publishers, transponders, access, log, clientAddressReader(config.trust_proxy));
  for (const server of [app.server, secondary]) server?.on('upgrade', (request, socket, head) => signaling.handleUpgrade(request, socket, head));

  let closing: Promise<void> | undefined;
  return {
    app,
    secondary,
    publishers,
    transponders,
    ffmpeg,
    reloadCertificates() {
      const fresh = readCertificate(config);
      for (const server of secure) server.setSecureContext(fresh);
    },
    close() {
      closing ??= (async () => {
        signaling.close();
        load.close();
        await transponders.closeAll();
        await publishers.closeAll('gateway shutting down');
        await app.close();
        if (secondary?.listening) await new Promise((done) => secondary!.close(done));
      })();
      return closing;
    },
  };
}

