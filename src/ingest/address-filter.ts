import { BlockList, isIP } from 'node:net';

/**
 * Which remote addresses ICE may talk to. An empty list of networks allows any address; tests
 * restrict it to loopback so that no packet is ever sent anywhere else.
 */
export class RemoteAddressFilter {
  readonly #allowed: BlockList | undefined;

  constructor(networks: readonly string[]) {
    if (networks.length === 0) return;
    this.#allowed = new BlockList();
    for (const network of networks) {
      const [address, bits] = network.split('/');
      this.#allowed.addSubnet(address!, Number(bits), isIP(address!) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  allows(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false; // mDNS names and other hostnames are never resolved
    if (!this.#allowed) return true;
    return this.#allowed.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Removes candidate lines the gateway will not use: hostnames (mDNS) and disallowed addresses. */
export function filterOfferCandidates(sdp: string, filter: RemoteAddressFilter): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => {
      const m = /^a=candidate:\S+ \d+ \S+ \d+ (\S+) /.exec(line);
      return !m || filter.allows(m[1]!);
    })
    .join('\r\n');
}

/** Keeps only the candidates on the configured addresses in an answer. */
export function keepAnnouncedCandidates(sdp: string, addresses: ReadonlySet<string>): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => {
      const m = /^a=candidate:\S+ \d+ \S+ \d+ (\S+) /.exec(line);
      return !m || addresses.has(m[1]!);
    })
    .join('\r\n');
}
