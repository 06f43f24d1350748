import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.js';
import type { RequestGuard } from '../security/access.js';
import type { ApiScope } from '../security/api-keys.js';
import { bearerToken } from '../security/bearer.js';

/** Routes of the control API and of monitoring, and the key scope each needs. */
function scopeOf(path: string): ApiScope | undefined {
  if (path.startsWith('/rest-api/')) return 'control';
  if (path === '/metrics') return 'metrics';
  return undefined;
}

export function checkHost(guard: RequestGuard, host: string | undefined): void {
  if (!guard.origins.allowsHost(host)) {
    throw new GatewayError('forbidden', 'Host: not one of the gateway\'s names (http_allowed_hosts)', 'Host');
  }
}

export function checkOrigin(guard: RequestGuard, origin: string | undefined, host: string | undefined): void {
  if (!guard.origins.allowsOrigin(origin, host)) {
    throw new GatewayError('forbidden', 'Origin: pages of this origin may not use the gateway (http_allowed_origins)', 'Origin');
  }
}

/**
 * Checks a bearer token against the control keys; a client that failed too often is refused before
 * its token is looked at. Nothing is changed by a refused request: this runs before any route.
 */
export async function authenticate(guard: RequestGuard, authorization: string | string[] | undefined, scope: ApiScope, client: string): Promise<string | undefined> {
  if (!guard.apiKeys.enabled) return undefined;
  return guard.failures.attempt(client, () => {
    const token = bearerToken(authorization);
    const id = token === undefined ? undefined : guard.apiKeys.verify(token, scope);
    if (id !== undefined) return id;
    throw new GatewayError('unauthorized', token === undefined ? 'Authorization: a Bearer API key is required' : 'Authorization: the API key is not valid for this route', 'Authorization');
  });
}

export function installGuard(app: FastifyInstance, guard: RequestGuard): void {
  app.addHook('onRequest', async (request: FastifyRequest) => {
    checkHost(guard, request.headers.host);
    const scope = scopeOf(request.url.split('?')[0]!);
    if (scope === undefined) return;
    checkOrigin(guard, request.headers.origin, request.headers.host);
    const keyId = await authenticate(guard, request.headers.authorization, scope, request.ip);
    if (keyId) request.log = request.log.child({ apiKey: keyId });
  });
}
