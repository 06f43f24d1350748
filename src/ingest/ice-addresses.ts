import { readFileSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

/**
 * The entry of `webrtc_ice_addresses` that stands for this machine's own address on its default
 * route: the one browsers on the machine (and on its network) reach it at. Firefox and Safari
 * never pair a loopback candidate, so a gateway that announces 127.0.0.1 alone works with
 * Chromium only.
 */
const DEFAULT_ROUTE = 'default-route';

/** What the machine tells of its routes and interfaces (read from /proc and the OS; given in tests). */
export interface RouteTable {
  /** The interface of the IPv4 default route, then of the IPv6 one, when there is one. */
  defaultInterfaces(): { ipv4?: string; ipv6?: string };
  interfaces(): NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export interface ResolvedAddresses {
  /** The addresses to gather and announce, each once, in the configured order. */
  addresses: string[];
  /** Set when `default-route` named nothing: why, for the start log. */
  unresolved?: string;
}

/**
 * The configured ICE addresses with `default-route` replaced by the machine's address on its
 * default route: the IPv4 one when there is an IPv4 default route, else the IPv6 one. Nothing
 * else is added: the gateway gathers and announces only what the configuration names.
 */
export function resolveIceAddresses(
  configured: readonly string[],
  routes: RouteTable = systemRoutes,
): ResolvedAddresses {
  const addresses: string[] = [];
  let unresolved: string | undefined;
  for (const entry of configured) {
    const address = entry === DEFAULT_ROUTE ? defaultRouteAddress(routes) : entry;
    if (address === undefined)
      unresolved = 'default-route names no address: this machine has no default route on an interface with an address';
    else if (!addresses.includes(address)) addresses.push(address);
  }
  return { addresses, unresolved };
}

function defaultRouteAddress(routes: RouteTable): string | undefined {
  const { ipv4, ipv6 } = routes.defaultInterfaces();
  const all = routes.interfaces();
  const usable = (name: string | undefined, family: 'IPv4' | 'IPv6'): string | undefined =>
    name === undefined
      ? undefined
      : all[name]?.find(
          (info) => info.family === family && !info.internal && !(family === 'IPv6' && (info.scopeid ?? 0) !== 0),
        )?.address;
  return usable(ipv4, 'IPv4') ?? usable(ipv6, 'IPv6');
}

/** The first interface in a /proc/net/route table whose route is up, to 0.0.0.0/0. */
export function ipv4DefaultInterface(table: string): string | undefined {
  for (const line of table.split('\n').slice(1)) {
    const [name, destination, , flags, , , , mask] = line.trim().split(/\s+/);
    if (name && destination === '00000000' && mask === '00000000' && (parseInt(flags ?? '0', 16) & 1) === 1)
      return name;
  }
  return undefined;
}

/** The first interface in a /proc/net/ipv6_route table with a route to ::/0 (not the loopback's "unreachable" one). */
export function ipv6DefaultInterface(table: string): string | undefined {
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [destination, prefix] = fields;
    const name = fields[9];
    if (
      destination === '0'.repeat(32) &&
      prefix === '00' &&
      name &&
      name !== 'lo' &&
      (parseInt(fields[8] ?? '0', 16) & 1) === 1
    )
      return name;
  }
  return undefined;
}

const readOr = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

const systemRoutes: RouteTable = {
  defaultInterfaces: () => ({
    ipv4: ipv4DefaultInterface(readOr('/proc/net/route')),
    ipv6: ipv6DefaultInterface(readOr('/proc/net/ipv6_route')),
  }),
  interfaces: () => networkInterfaces(),
};

const isLoopback = (address: string): boolean => address.startsWith('127.') || address === '::1';

/** Why a publisher's ICE checks do not come, as far as the gateway can tell: what it announced, what the offer showed. */
export function noIceCheckWarning(announced: readonly string[], offerCandidate: string, afterMs: number): string {
  const cause =
    announced.length > 0 && announced.every(isLoopback)
      ? 'Firefox and Safari never pair a loopback address: ' +
        "announce one of this machine's own (webrtc_ice_addresses: default-route, or the address itself)"
      : offerCandidate === 'none'
        ? 'the offer carried no candidate: the client gathered none, or sends them later'
        : 'the publisher cannot reach those addresses (another network, a firewall or NAT): announce one it can reach';
  const addresses = announced.join(', ') || 'no address';
  return (
    `no ICE check from the publisher within ${afterMs / 1000} s: the gateway announces ${addresses} ` +
    `and the offer's first candidate is ${offerCandidate}; ${cause}`
  );
}
