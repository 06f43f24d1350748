import { isIP } from 'node:net';
import { classifyAddress } from './addresses.js';
import { hostNamePattern } from './destination-policy.js';
import { GatewayError } from '../core/errors.js';

/**
 * Which `Host` names the gateway answers to and which page origins may drive it. A gateway on
 * 127.0.0.1 is reachable from any page the operator opens: a cross-origin page is told apart by its
 * `Origin`, and DNS rebinding (a foreign name pointed at 127.0.0.1) by its `Host`.
 */
export interface OriginPolicyConfig {
  /** The listen address (`http_host`). */
  listenHost: string;
  /** Host names (with `*.` patterns) and addresses; empty: see `allowsHost`. */
  allowedHosts: readonly string[];
  /** Origins (`https://app.example.com`, `*`); empty: the gateway's own and localhost pages. */
  allowedOrigins: readonly string[];
}

/** The host name of a `Host` header or origin authority, lowercased, without port or brackets. */
function hostName(authority: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(authority);
  if (v6) return v6[1]!.toLowerCase();
  return authority.replace(/:\d+$/, '').toLowerCase();
}

function isLoopbackName(name: string): boolean {
  return (
    name === 'localhost' || name.endsWith('.localhost') || (isIP(name) !== 0 && classifyAddress(name) === 'loopback')
  );
}

export class OriginPolicy {
  readonly #hosts: RegExp[];
  readonly #anyHost: boolean;
  readonly #origins: ReadonlySet<string>;
  readonly #anyOrigin: boolean;
  /** With no origins listed, localhost pages (a developer's) may drive the gateway. */
  readonly #localPages: boolean;

  constructor(config: OriginPolicyConfig) {
    const listen = config.listenHost.toLowerCase();
    const onLoopback = isLoopbackName(listen);
    // Listening on loopback, only loopback names reach the gateway legitimately; on another address
    // its public names are not known here, so any name is answered (list them to be strict).
    this.#anyHost = config.allowedHosts.length === 0 && !onLoopback;
    this.#hosts = config.allowedHosts.map((h) => hostNamePattern(hostName(h)));
    if (isIP(listen) && !['0.0.0.0', '::'].includes(listen)) this.#hosts.push(hostNamePattern(listen));
    this.#origins = new Set(config.allowedOrigins.filter((o) => o !== '*').map((o) => o.toLowerCase()));
    this.#anyOrigin = config.allowedOrigins.includes('*');
    this.#localPages = config.allowedOrigins.length === 0;
  }

  /** Throws 403 naming `Host` for a name that is not one of the gateway's. */
  checkHost(header: string | undefined): void {
    if (!this.allowsHost(header))
      throw new GatewayError('forbidden', "Host: not one of the gateway's names (http_allowed_hosts)", 'Host');
  }

  /** Throws 403 naming `Origin` for a page that may not use the gateway. */
  checkOrigin(origin: string | undefined, host: string | undefined): void {
    if (!this.allowsOrigin(origin, host))
      throw new GatewayError(
        'forbidden',
        'Origin: pages of this origin may not use the gateway (http_allowed_origins)',
        'Origin',
      );
  }

  allowsHost(header: string | undefined): boolean {
    if (!header) return false;
    const name = hostName(header);
    return this.#anyHost || isLoopbackName(name) || this.#hosts.some((r) => r.test(name));
  }

  /**
   * A request without `Origin` (curl, a backend) is no page and passes; a page passes when it is the
   * gateway's own origin or listed, or, with none listed, a localhost page.
   */
  allowsOrigin(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    if (this.#anyOrigin) return true;
    const lower = origin.toLowerCase();
    if (this.#origins.has(lower)) return true;
    const m = /^https?:\/\/([^/]+)$/.exec(lower);
    if (!m) return false; // "null" (sandboxed frames, files) and anything malformed
    return (host !== undefined && m[1] === host.toLowerCase()) || (this.#localPages && isLoopbackName(hostName(m[1]!)));
  }
}
