import { isIP } from 'node:net';
import { invalid } from '../core/errors.js';
import {
  classifyAddress,
  addressBytes,
  inNetwork,
  parseNetwork,
  type AddressClass,
  type Network,
} from './addresses.js';
import { lookup } from 'node:dns/promises';

/**
 * Where the gateway may open RTMP connections on a caller's behalf (server-side request forgery).
 * Checked on every address the destination's host resolves to, before any packet leaves; the
 * connection then goes to the checked address.
 */
export interface DestinationPolicyConfig {
  allowLoopback: boolean;
  allowPrivate: boolean;
  /** When not empty, only these: host name patterns (`*.youtube.com`), addresses and CIDR blocks. */
  allowedHosts: readonly string[];
  /** Never these (same forms). */
  deniedHosts: readonly string[];
  /** When not empty, only these ports. */
  allowedPorts: readonly number[];
}

/** Never reachable as a destination, whatever the configuration: cloud metadata lives at link-local. */
const ALWAYS_REFUSED: ReadonlySet<AddressClass> = new Set([
  'unspecified',
  'link-local',
  'multicast',
  'broadcast',
  'reserved',
]);

interface HostRules {
  names: RegExp[];
  networks: Network[];
}

function compileHosts(patterns: readonly string[]): HostRules {
  const rules: HostRules = { names: [], networks: [] };
  for (const pattern of patterns) {
    const network = parseNetwork(pattern.replace(/^\[|\]$/g, ''));
    if (network) rules.networks.push(network);
    else rules.names.push(hostNamePattern(pattern));
  }
  return rules;
}

/** `*.example.com` matches any name under example.com (one or more labels); matching ignores case. */
export function hostNamePattern(pattern: string): RegExp {
  const body = pattern
    .toLowerCase()
    .replace(/\.$/, '')
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[a-z0-9.-]+');
  return new RegExp(`^${body}$`);
}

function matchesName(rules: HostRules, host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return isIP(name) === 0 && rules.names.some((r) => r.test(name));
}

function matchesAddress(rules: HostRules, address: string): boolean {
  const bytes = addressBytes(address);
  return bytes !== undefined && rules.networks.some((n) => inNetwork(bytes, n));
}

const CLASS_KEY: Partial<Record<AddressClass, string>> = {
  loopback: 'destination_allow_loopback',
  private: 'destination_allow_private',
};

export class DestinationPolicy {
  readonly #allowed: HostRules;
  readonly #denied: HostRules;

  constructor(private readonly config: DestinationPolicyConfig) {
    this.#allowed = compileHosts(config.allowedHosts);
    this.#denied = compileHosts(config.deniedHosts);
  }

  /** What can be refused from the URL alone, before any lookup: the port and denied or unlisted names. */
  checkName(host: string, port: number, field = 'rtmpUrl'): void {
    const { allowedPorts } = this.config;
    if (allowedPorts.length && !allowedPorts.includes(port))
      throw invalid(field, `port ${port} is not allowed (destination_allowed_ports)`);
    if (matchesName(this.#denied, host)) throw invalid(field, `host ${host} is denied (destination_denied_hosts)`);
    // With only names allowed, an unlisted name is refused unlooked-up; with CIDRs, its addresses decide.
    const namesOnly = this.#allowed.names.length > 0 && this.#allowed.networks.length === 0;
    if (namesOnly && isIP(host) === 0 && !matchesName(this.#allowed, host)) {
      throw invalid(field, `host ${host} is not among the allowed destinations (destination_allowed_hosts)`);
    }
  }

  /**
   * Checks every address the host resolved to; one refused address refuses the destination, so a
   * name cannot slip an internal address in beside a public one. The message names the rule, not
   * the address, so refusals tell a caller nothing about the internal network.
   */
  check(host: string, port: number, addresses: readonly string[], field = 'rtmpUrl'): void {
    this.checkName(host, port, field);
    if (addresses.length === 0) throw invalid(field, `host ${host} does not resolve`);
    const listed = matchesName(this.#allowed, host);
    const subject = isIP(host) ? `address ${host} is` : `host ${host} resolves to`;
    for (const address of addresses) {
      const kind = classifyAddress(address);
      if (kind === undefined) throw invalid(field, `host ${host} resolves to something that is not an IP address`);
      const article = /^[aeiou]/.test(kind) ? 'an' : 'a';
      if (ALWAYS_REFUSED.has(kind))
        throw invalid(field, `${subject} ${article} ${kind} address, never allowed as a destination`);
      if (matchesAddress(this.#denied, address))
        throw invalid(field, `${subject} a denied address (destination_denied_hosts)`);
      const addressListed = matchesAddress(this.#allowed, address);
      if (this.config.allowedHosts.length && !listed && !addressListed) {
        throw invalid(field, `host ${host} is not among the allowed destinations (destination_allowed_hosts)`);
      }
      const key = CLASS_KEY[kind];
      const allowedByClass =
        (kind === 'loopback' && this.config.allowLoopback) || (kind === 'private' && this.config.allowPrivate);
      if (key && !allowedByClass && !addressListed)
        throw invalid(
          field,
          `${subject} ${article} ${kind} address, not allowed (set ${key}, or list it in destination_allowed_hosts)`,
        );
    }
  }
}

/** Answers a host with every address it resolves to; rejects when it does not resolve. */
export type HostLookup = (host: string) => Promise<string[]>;

/**
 * Checks a destination against the policy and resolves it once: the address to connect to. Its
 * `check` is the part that needs no lookup (the port, denied names, an address written as such),
 * for refusing before anything else is asked.
 */
export type DestinationResolver = ((host: string, port: number, field?: string) => Promise<string>) & {
  check(host: string, port: number, field?: string): void;
};

export function destinationResolver(lookup: HostLookup, policy: DestinationPolicy): DestinationResolver {
  const check = (host: string, port: number, field = 'rtmpUrl'): void => {
    policy.checkName(host, port, field);
    if (isIP(host)) policy.check(host, port, [host], field);
  };
  return Object.assign(
    async (host: string, port: number, field = 'rtmpUrl') => {
      check(host, port, field);
      let addresses: string[];
      try {
        addresses = isIP(host) ? [host] : await lookup(host);
      } catch {
        throw invalid(field, `host ${host} does not resolve`);
      }
      policy.check(host, port, addresses, field);
      return addresses[0]!;
    },
    { check },
  );
}

/** Every address of a host, from the system's resolver (as a TCP connect would see them). */
export const lookupHost: HostLookup = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
