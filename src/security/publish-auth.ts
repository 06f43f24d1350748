import { wallClockMs } from '../core/clock.js';
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errors as joseErrors, jwtVerify, decodeProtectedHeader, type JWTPayload } from 'jose';
import { ConfigError } from '../config/load.js';
import { GatewayError } from '../core/errors.js';
import { hostNamePattern } from './destination-policy.js';
import { SecretDigest } from './bearer.js';

/** Where a publisher may have the gateway push with the SDK's `rtmpUrl`. */
type DestinationGrant = 'none' | 'any' | readonly string[];

/** What one authorized publisher may do. */
export interface PublishGrant {
  /** Who: a key id, `jwt:<kid>/<sub>`, `hook`, or `anonymous`. Safe to log. */
  subject: string;
  /** Stream-name patterns (`*` matches any characters). */
  streams: readonly string[];
  destinations: DestinationGrant;
  /** Whether it may also watch those streams (WHEP). */
  view: boolean;
  /** Mixer-name patterns: mixers it may start, and add its streams to, from the SDK. */
  mixers: readonly string[];
}

export interface PublishRequest {
  /** Publishing (the default), or watching (WHEP). */
  action?: 'publish' | 'view';
  stream: string;
  token: string | undefined;
  client: string;
  /** The SDK's rtmpUrl host, when the publish asks for a push. */
  destinationHost?: string;
  /** The redacted rtmpUrl, for the authorization hook. */
  redactedDestination?: string;
  /** A mixer's name, when the SDK starts that mixer or adds the stream to it. */
  mixer?: string;
}

export interface PublishKeyConfig {
  id: string;
  secret: string;
  streams: readonly string[];
  destinations: DestinationGrant;
  view?: boolean;
  mixers?: readonly string[];
}

interface JwtKeyConfig {
  id: string;
  alg: 'HS256' | 'ES256' | 'RS256';
  secret?: string;
  publicKeyFile?: string;
}

export interface PublishAuthConfig {
  keys: readonly PublishKeyConfig[];
  jwtKeys: readonly JwtKeyConfig[];
  jwtIssuer: string;
  jwtAudience: string;
  /** The longest a token may be valid: `exp` less `iat` (or less now, when that is longer), seconds. */
  jwtMaxLifetimeS: number;
  /** Clock difference allowed with the token's issuer for `exp`, `nbf` and `iat`, seconds. */
  jwtClockToleranceS: number;
  hookUrl: string;
  hookTimeoutMs: number;
  /** Control API keys also authorize publishing, with every stream and destination. */
  isControlKey: (token: string) => string | undefined;
  /** With control keys set but no publish authorization, anonymous publishers may not push anywhere. */
  controlKeysSet: boolean;
}

const unauthorized = (message: string): GatewayError => new GatewayError('unauthorized', message, 'token');
const forbidden = (message: string, field = 'token'): GatewayError => new GatewayError('forbidden', message, field);

function streamPattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

/**
 * Decides who may publish which stream, and where a publisher may have the gateway push:
 * control keys, static publish keys, JWTs signed by the integrator's backend (HS256, ES256, RS256;
 * claims `streams`, `destinations`, `exp`, `nbf`), and an HTTP hook that answers 2xx to allow.
 * With none of them configured publishing is open (a gateway on loopback, the quick start).
 */
export class PublishAuthorizer {
  readonly #keys: { config: PublishKeyConfig; digest: SecretDigest }[];
  readonly #jwtKeys = new Map<string, { alg: string; key: KeyObject }>();

  constructor(private readonly config: PublishAuthConfig) {
    this.#keys = config.keys.map((k) => ({ config: k, digest: new SecretDigest(k.secret) }));
    for (const k of config.jwtKeys) {
      let key: KeyObject;
      try {
        key =
          k.alg === 'HS256'
            ? createSecretKey(Buffer.from(k.secret!, 'utf8'))
            : createPublicKey(readFileSync(k.publicKeyFile!));
      } catch (error) {
        throw new ConfigError(`publish_jwt_keys ${k.id}: cannot load the key: ${(error as Error).message}`);
      }
      this.#jwtKeys.set(k.id, { alg: k.alg, key });
    }
  }

  /** Whether publishing needs a token. */
  get enabled(): boolean {
    return this.#keys.length > 0 || this.#jwtKeys.size > 0 || this.config.hookUrl !== '';
  }

  /**
   * Answers the grant for a publish of `stream`, or throws 401 (no or bad token) or 403 (a good token
   * that does not cover this stream or destination). A refusal starts and changes nothing.
   */
  async authorize(request: PublishRequest): Promise<PublishGrant> {
    const grant = await this.#grantFor(request);
    const verb = request.action === 'view' ? 'watching' : 'publishing';
    if (!grant.streams.some((p) => streamPattern(p).test(request.stream))) {
      throw forbidden(`the token does not allow ${verb} stream ${request.stream}`);
    }
    if (request.action === 'view' && !grant.view) {
      if (grant.subject === 'anonymous')
        throw unauthorized('watching needs the control key or a view token (Authorization: Bearer)');
      throw forbidden('the token does not allow watching (a view grant: "view": true)');
    }
    if (request.destinationHost !== undefined) checkDestinationGrant(grant, request.destinationHost);
    if (request.mixer !== undefined && !grant.mixers.some((p) => streamPattern(p).test(request.mixer!))) {
      const why =
        grant.subject === 'anonymous'
          ? 'anonymous publishers may not use mixers (set publish_keys or publish_jwt_keys)'
          : `the token does not allow mixer ${request.mixer}`;
      throw forbidden(`mixer: ${why}`, 'mixer');
    }
    return grant;
  }

  async #grantFor(request: PublishRequest): Promise<PublishGrant> {
    const { token } = request;
    const control = token === undefined ? undefined : this.config.isControlKey(token);
    if (control)
      return { subject: `api-key:${control}`, streams: ['*'], destinations: 'any', view: true, mixers: ['*'] };
    if (!this.enabled) {
      // Nothing is protected on a gateway with no keys at all (the quick start, on loopback).
      const open = !this.config.controlKeysSet;
      return {
        subject: 'anonymous',
        streams: ['*'],
        destinations: open ? 'any' : 'none',
        view: open,
        mixers: open ? ['*'] : [],
      };
    }
    if (token !== undefined) {
      let key: PublishKeyConfig | undefined;
      for (const k of this.#keys) if (k.digest.matches(token) && !key) key = k.config;
      if (key)
        return {
          subject: `publish-key:${key.id}`,
          streams: key.streams,
          destinations: key.destinations,
          view: key.view ?? false,
          mixers: key.mixers ?? [],
        };
      if (this.#jwtKeys.size && /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) return this.#verifyJwt(token);
    }
    if (this.config.hookUrl) return this.#askHook(request);
    if (token !== undefined) throw unauthorized('the token is not valid');
    throw unauthorized(
      request.action === 'view'
        ? 'watching needs the control key or a view token (Authorization: Bearer)'
        : 'publishing needs a token (Authorization: Bearer, or the SDK token option)',
    );
  }

  async #verifyJwt(token: string): Promise<PublishGrant> {
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw unauthorized('the token is malformed');
    }
    if (kid !== undefined && typeof kid !== 'string') throw unauthorized("the token's key id (kid) is not a string");
    if (kid === undefined && this.#jwtKeys.size > 1)
      throw unauthorized('the token names no key id (kid), and several keys are configured');
    const id = kid ?? this.#jwtKeys.keys().next().value!;
    const key = this.#jwtKeys.get(id);
    if (!key) throw unauthorized(`the token is signed with unknown key id ${JSON.stringify(id.slice(0, 64))}`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        clockTolerance: this.config.jwtClockToleranceS,
        // A token without an expiry would publish for ever once it leaked.
        requiredClaims: ['exp'],
        ...(this.config.jwtIssuer ? { issuer: this.config.jwtIssuer } : {}),
        ...(this.config.jwtAudience ? { audience: this.config.jwtAudience } : {}),
      }));
    } catch (error) {
      throw unauthorized(jwtRefusal(error));
    }
    const now = Math.floor(wallClockMs() / 1000);
    const exp = payload.exp!;
    const lifetimeS = Math.max(exp - (typeof payload.iat === 'number' ? payload.iat : now), exp - now);
    if (lifetimeS > this.config.jwtMaxLifetimeS) {
      throw unauthorized(
        `the token is valid for ${lifetimeS} s, longer than the gateway accepts ` +
          `(publish_jwt_max_lifetime_s: ${this.config.jwtMaxLifetimeS})`,
      );
    }
    return grantFromClaims(
      payload,
      `jwt:${id}${typeof payload.sub === 'string' ? `/${payload.sub.slice(0, 64)}` : ''}`,
    );
  }

  /** The integrator's endpoint decides (as nginx-rtmp's on_publish): 2xx allows, anything else refuses. */
  async #askHook(request: PublishRequest): Promise<PublishGrant> {
    let response: Response;
    try {
      response = await fetch(this.config.hookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          action: request.action ?? 'publish',
          stream: request.stream,
          clientAddress: request.client,
          token: request.token ?? null,
          destination: request.redactedDestination ?? null,
          destinationHost: request.destinationHost ?? null,
        }),
        signal: AbortSignal.timeout(this.config.hookTimeoutMs),
        redirect: 'error',
      });
      await response.body?.cancel();
    } catch {
      throw new GatewayError('unavailable', 'the publish authorization service did not answer', undefined, 5);
    }
    if (response.status >= 200 && response.status < 300) {
      // The hook is asked of publishing and watching; mixers need a key or a token that names them.
      return {
        subject: 'hook',
        streams: [request.stream],
        destinations: request.destinationHost ? [request.destinationHost] : 'none',
        view: request.action === 'view',
        mixers: [],
      };
    }
    if (response.status === 401)
      throw unauthorized(`the publish authorization service refused the token (${response.status})`);
    throw forbidden(`the publish authorization service refused this publish (${response.status})`);
  }
}

/** Throws 403 naming `rtmpUrl` when the grant does not cover a push to `host`. */
function checkDestinationGrant(grant: PublishGrant, host: string): void {
  const { destinations } = grant;
  if (destinations === 'any') return;
  const name = host.toLowerCase();
  if (destinations !== 'none' && destinations.some((p) => hostNamePattern(p).test(name))) return;
  const why =
    grant.subject === 'anonymous'
      ? 'anonymous publishers may not choose a destination (set publish_keys or publish_jwt_keys)'
      : 'the token does not allow pushing to this host';
  throw forbidden(`rtmpUrl: ${why}`, 'rtmpUrl');
}

function grantFromClaims(payload: JWTPayload, subject: string): PublishGrant {
  const streams = payload.streams ?? (typeof payload.stream === 'string' ? [payload.stream] : undefined);
  if (
    !Array.isArray(streams) ||
    streams.length === 0 ||
    !streams.every((s) => typeof s === 'string' && /^[A-Za-z0-9_.*-]{1,128}$/.test(s))
  ) {
    throw unauthorized('the token has no valid "streams" claim (a list of stream names or patterns)');
  }
  const d = payload.destinations ?? 'none';
  const valid =
    d === 'none' ||
    d === 'any' ||
    (Array.isArray(d) && d.every((h) => typeof h === 'string' && /^[A-Za-z0-9.*:-]{1,253}$/.test(h)));
  if (!valid) throw unauthorized('the token\'s "destinations" claim must be "none", "any" or a list of host patterns');
  if (payload.view !== undefined && typeof payload.view !== 'boolean')
    throw unauthorized('the token\'s "view" claim must be true or false');
  const mixers = payload.mixers ?? [];
  if (!Array.isArray(mixers) || !mixers.every((m) => typeof m === 'string' && /^[A-Za-z0-9_.*-]{1,128}$/.test(m))) {
    throw unauthorized('the token\'s "mixers" claim must be a list of mixer names or patterns');
  }
  return {
    subject,
    streams: streams as string[],
    destinations: d as DestinationGrant,
    view: payload.view === true,
    mixers: mixers as string[],
  };
}

function jwtRefusal(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'the token is not valid yet (nbf)';
    if (error.claim === 'exp' && error.reason === 'missing')
      return 'the token has no expiry ("exp" claim): it must expire';
    return `the token's "${error.claim}" claim is not accepted`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "the token's signing algorithm is not allowed for its key";
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  return 'the token is malformed';
}
