import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { GatewayError } from '../core/errors.js';
import type { RequestGuard } from '../security/access.js';
import type { ApiScope } from '../security/api-keys.js';
import { bearerToken } from '../security/bearer.js';

/**
 * Who may call a route, declared in the route's own options (`config.access`):
 * - `public`: anyone (pages, the SDK's files, the API description, health);
 * - `publish`: anyone whom the route itself authorizes with a publish token (WHIP);
 * - `control`: a control API key (with `api_keys` set), from no page of another origin;
 * - `metrics`: a key with the metrics scope, likewise;
 * - `node`: another node of the cluster, whose call the route itself opens with the cluster's secret.
 */
export type RouteAccess = 'public' | 'publish' | 'node' | ApiScope;

const ACCESS: readonly RouteAccess[] = ['public', 'publish', 'node', 'control', 'metrics'];

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** The id of the API key the request was made with, when it gave one. */
    apiKeyId?: string;
  }
}

/** Route options that declare who may call the route: `app.get(url, routeAccess('public'), handler)`. */
export function routeAccess(access: RouteAccess): { config: { access: RouteAccess } } {
  return { config: { access } };
}

/**
 * Checks a bearer token against the control keys; a client that failed too often is refused before
 * its token is looked at. Nothing is changed by a refused request: this runs before any route.
 */
async function authenticate(
  guard: RequestGuard,
  authorization: string | string[] | undefined,
  scope: ApiScope,
  client: string,
): Promise<string | undefined> {
  if (!guard.apiKeys.enabled) return undefined;
  return guard.failures.attempt(client, () => {
    const token = bearerToken(authorization);
    const id = token === undefined ? undefined : guard.apiKeys.verify(token, scope);
    if (id !== undefined) return id;
    throw new GatewayError(
      'unauthorized',
      token === undefined
        ? 'Authorization: a Bearer API key is required'
        : 'Authorization: the API key is not valid for this route',
      'Authorization',
    );
  });
}

/**
 * Access is a property of the route: every route must declare it (a route that does not refuses to
 * register, so the gateway does not start), and each request is checked against the route the
 * router matched, after it decoded the path. The URL's text is never looked at, so no spelling of a
 * path (`%72est-api`, `/metrics;x`, `/metrics#`) reaches a route past its check. A path that matches
 * no route gets the Host check alone, then 404 or 405.
 */
export function installGuard(
  app: FastifyInstance,
  guard: RequestGuard,
  onRoute: (route: RouteOptions) => void = () => {},
): void {
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access === undefined || !ACCESS.includes(access)) {
      throw new Error(
        `${String(route.method)} ${route.url}: the route declares no access (config.access: ${ACCESS.join(' | ')})`,
      );
    }
    onRoute(route);
  });
  app.addHook('onRequest', async (request: FastifyRequest) => {
    guard.origins.checkHost(request.headers.host);
    const access = request.routeOptions.config.access;
    if (access !== 'control' && access !== 'metrics') return;
    guard.origins.checkOrigin(request.headers.origin, request.headers.host);
    const keyId = await authenticate(guard, request.headers.authorization, access, request.ip);
    if (keyId) {
      request.apiKeyId = keyId;
      request.log = request.log.child({ apiKey: keyId });
    }
  });
}
