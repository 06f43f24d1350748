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

/** Keeps the SDP's `a=candidate` lines whose address passes `keep`, and every other line. */
export function filterCandidates(sdp: string, keep: (address: string) => boolean): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => {
      const m = /^a=candidate:\S+ \d+ \S+ \d+ (\S+) /.exec(line);
      return !m || keep(m[1]!);
    })
    .join('\r\n');
}
