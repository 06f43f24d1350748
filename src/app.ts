import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/schema.js';
import { GatewayError, statusFor } from './errors.js';
import { pushRoutes } from './http/routes/push.js';
import { SignalingServer } from './http/routes/signaling.js';
import { staticRoutes } from './http/routes/static.js';
import { whipRoutes } from './http/routes/whip.js';
import type { IngestEngine } from './ingest/engine.js';
import { WeriftEngine } from './ingest/werift-engine.js';
import { createMetrics } from './metrics.js';
import { ROOT } from './paths.js';
import { PublisherRegistry } from './publishers/registry.js';
import { rtmpsTrust } from './rtmp/trust.js';
import { DestinationPolicy, destinationResolver, type HostLookup } from './security/destination-policy.js';
import { lookupHost, TransponderService } from './transponders/service.js';

export interface Gateway {
  app: FastifyInstance;
  publishers: PublisherRegistry;
  transponders: TransponderService;
  /** Ends every transponder and publisher, then the HTTP server. Idempotent. */
  close(): Promise<void>;
}

/** RTP ports for ffmpeg inputs on loopback, away from the ICE range. */
const RTP_PORT_RANGE: [number, number] = [20000, 29999];

export function createEngine(config: GatewayConfig, log: Logger): IngestEngine {
  return new WeriftEngine({
    addresses: config.webrtc_ice_addresses,
    portRange: [config.webrtc_ice_port_min, config.webrtc_ice_port_max],
    remoteNetworks: config.webrtc_ice_remote_networks,
    videoCodecs: config.webrtc_video_codecs,
    videoBitrateKbps: config.webrtc_video_bitrate_kbps,
    videoMinBitrateKbps: config.webrtc_video_min_bitrate_kbps,
    onListenerError: (event, error) => log.error({ err: error, event }, 'ingest listener failed'),
  });
}

/** Composes the gateway: domain services, HTTP routes, signalling. Owns nothing process-wide. */
export interface GatewayDependencies {
  engine?: IngestEngine;
  /** DNS for destination hosts; tests answer without the network. */
  lookupHost?: HostLookup;
}

export function buildGateway(config: GatewayConfig, log: Logger, deps: GatewayDependencies = {}): Gateway {
  const engine = deps.engine ?? createEngine(config, log);
  const publishers = new PublisherRegistry(engine, {
    keyframeIntervalMs: config.webrtc_keyframe_interval_ms,
    mediaTimeoutMs: config.webrtc_media_timeout_ms,
    log,
  });
  const transponders = new TransponderService(
    publishers,
    { prefix: config.rtmp_transponder_stream_name_prefix, fullUrl: config.rtmp_transponder_full_url },
    {
      ffmpegPath: config.ffmpeg_path,
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
      rtpPortRange: RTP_PORT_RANGE,
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
      outBuffer: {
        enabled: config.rtmp_out_buffer_enabled,
        startMs: config.rtmp_out_buffer_start_size,
        maxMs: config.rtmp_out_buffer_initial_size,
        pollingMs: config.rtmp_out_buffer_polling_time,
        maxBufferings: config.rtmp_out_buffer_max_bufferings_allowed,
      },
      publisherGraceMs: config.rtmp_push_publisher_grace_ms,
    },
    log.child({ component: 'transponders' }),
    config.rtmp_push_auto_start ? config.rtmp_push_auto_start_url : undefined,
  );
  const metrics = createMetrics(publishers, transponders);

  const app: FastifyInstance = Fastify({ loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger, bodyLimit: 256 * 1024 });
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
      if (error.code === 'internal') request.log.warn({ reason: error.message }, 'request failed');
      return reply.code(statusFor(error.code)).send({ error: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      return reply.code(status).send({ error: 'invalid_request', message: (error as Error).message });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));

  pushRoutes(app, transponders);
  whipRoutes(app, publishers);
  staticRoutes(app);
  // Probes and scrapes are frequent: keep them out of the info log.
  app.get('/health', { logLevel: 'warn' }, async () => ({ status: 'ok', publishers: publishers.all().length, transponders: transponders.all().length }));
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  const signaling = new SignalingServer(publishers, transponders, log);
  app.server.on('upgrade', (request, socket, head) => signaling.handleUpgrade(request, socket, head));

  let closing: Promise<void> | undefined;
  return {
    app,
    publishers,
    transponders,
    close() {
      closing ??= (async () => {
        signaling.close();
        await transponders.closeAll();
        await publishers.closeAll('gateway shutting down');
        await app.close();
      })();
      return closing;
    },
  };
}

