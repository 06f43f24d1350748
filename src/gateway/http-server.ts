import { readFileSync } from 'node:fs';
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
import type { GatewayConfig } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { GatewayError } from '../core/errors.js';
import { clientErrorHandler, frameworkErrors, installErrorReplies } from '../http/error-replies.js';
import { installGuard } from '../http/guard.js';
import { ROUTER_OPTIONS, RouteTable } from '../http/route-table.js';
import { installRouteSchemas } from '../http/route-schemas.js';
import { installOpenApi } from '../http/openapi.js';
import type { RequestGuard } from '../security/access.js';

/** REST bodies are small JSON objects; offers have their own limit (MAX_OFFER_BYTES). */
const REST_BODY_LIMIT = 64 * 1024;

/** The HTTP side of a gateway, before any route: the servers, the access guard, error replies and parsers. */
export interface HttpServer {
  app: FastifyInstance;
  /** HTTPS on `https_port`, beside HTTP on `http_port`; the caller listens on it. */
  secondary?: HttpsServer;
  /** Every route with the access it declared. */
  routes: RouteTable;
  /** Reads the certificate and key files again for new connections (SIGHUP); live ones go on. */
  reloadCertificates(): void;
  close(): Promise<void>;
}

function readCertificate(config: GatewayConfig): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(config.https_cert_file), key: readFileSync(config.https_key_file) };
  } catch (error) {
    throw new ConfigError(
      `https_cert_file / https_key_file: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** HTTP or HTTPS on `http_port`, and HTTPS on `https_port` too when set: one handler serves them all. */
export function createHttp(config: GatewayConfig, log: Logger, guard: RequestGuard): HttpServer {
  const tls = config.https_cert_file ? readCertificate(config) : undefined;
  const secure: HttpsServer[] = [];
  let secondary: HttpsServer | undefined;
  const app: FastifyInstance = Fastify({
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
  installGuard(app, guard, (route) => routes.add(route));
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
  return {
    app,
    secondary,
    routes,
    reloadCertificates() {
      const fresh = readCertificate(config);
      for (const server of secure) server.setSecureContext(fresh);
    },
    async close() {
      await app.close();
      if (secondary?.listening) await new Promise((done) => secondary!.close(done));
    },
  };
}
