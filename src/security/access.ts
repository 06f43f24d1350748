import type { GatewayConfig } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { classifyAddress } from './addresses.js';
import { ApiKeyring } from './api-keys.js';
import { AuthFailureLimiter } from './auth-failures.js';
import { ClientQuota } from './client-quota.js';
import { OriginPolicy } from './origins.js';
import { PublishAuthorizer, type PublishGrant, type PublishRequest } from './publish-auth.js';
import { readSecret } from './secrets.js';

/** What every request passes before a route sees it: the gateway's names, page origins, control keys. */
export interface RequestGuard {
  origins: OriginPolicy;
  apiKeys: ApiKeyring;
  failures: AuthFailureLimiter;
}

/** Who may do what: control keys, publish authorization, names and origins, per-client quotas. */
export interface AccessControl {
  guard: RequestGuard;
  publishAuth: PublishAuthorizer;
  quota: ClientQuota;
  /** The operator console's event streams, per client address and in total. */
  consoleStreams: ClientQuota;
}

export function isLoopbackListen(host: string): boolean {
  return host === 'localhost' || classifyAddress(host) === 'loopback';
}

export function createAccessControl(config: GatewayConfig, env: NodeJS.ProcessEnv = process.env): AccessControl {
  const apiKeys = new ApiKeyring(
    config.api_keys.map((k, i) => ({ id: k.id, scope: k.scope, secret: readSecret(k, `api_keys.${i}`, env) })),
  );
  if (!apiKeys.enabled && !isLoopbackListen(config.http_host) && !config.api_auth_disabled) {
    throw new ConfigError(
      `http_host ${config.http_host} is not a loopback address, and no api_keys are set: ` +
        'set api_keys (the control API needs them off loopback), or api_auth_disabled: true to serve it open',
    );
  }
  const publishAuth = new PublishAuthorizer({
    keys: config.publish_keys.map((k, i) => ({
      id: k.id,
      streams: k.streams,
      destinations: k.destinations,
      view: k.view,
      mixers: k.mixers,
      secret: readSecret(k, `publish_keys.${i}`, env),
    })),
    jwtKeys: config.publish_jwt_keys.map((k, i) => ({
      id: k.id,
      alg: k.alg,
      publicKeyFile: k.public_key_file,
      secret: k.alg === 'HS256' ? readSecret(k, `publish_jwt_keys.${i}`, env) : undefined,
    })),
    jwtIssuer: config.publish_jwt_issuer,
    jwtAudience: config.publish_jwt_audience,
    jwtMaxLifetimeS: config.publish_jwt_max_lifetime_s,
    jwtClockToleranceS: config.publish_jwt_clock_tolerance_s,
    hookUrl: config.publish_auth_url,
    hookTimeoutMs: config.publish_auth_timeout_ms,
    isControlKey: (token) => apiKeys.verify(token, 'control'),
    controlKeysSet: apiKeys.enabled,
  });
  const guard: RequestGuard = {
    apiKeys,
    failures: new AuthFailureLimiter(config.auth_failures_per_minute),
    origins: new OriginPolicy({
      listenHost: config.http_host,
      allowedHosts: config.http_allowed_hosts,
      allowedOrigins: config.http_allowed_origins,
    }),
  };
  return {
    guard,
    publishAuth,
    quota: new ClientQuota({ perClient: config.limit_sessions_per_client, perClientKey: 'limit_sessions_per_client' }),
    consoleStreams: new ClientQuota({
      perClient: config.limit_console_streams_per_client,
      perClientKey: 'limit_console_streams_per_client',
      total: config.limit_console_streams,
      totalKey: 'limit_console_streams',
    }),
  };
}

/**
 * Authorizes a publish (WHIP or SDK): a client that failed too often is refused before its token is
 * looked at, and every refusal (a bad token, one that does not cover the stream or destination, the
 * authorization hook's no) counts as a failure of its client, so tokens cannot be guessed through
 * the hook without limit.
 */
export async function authorizePublish(access: AccessControl, request: PublishRequest): Promise<PublishGrant> {
  const { publishAuth, guard } = access;
  // Open publishing needs no guard; watching is guarded whenever keys are set (a key may be guessed at).
  if (!publishAuth.enabled && request.action !== 'view') return publishAuth.authorize(request);
  return guard.failures.attempt(
    request.client,
    () => publishAuth.authorize(request),
    (error) => error.code === 'unauthorized' || error.code === 'forbidden',
  );
}
