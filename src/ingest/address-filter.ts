import { BlockList, isIP } from 'node:net';
import { classifyAddress } from '../security/addresses.js';
import { CANDIDATE } from './offer-check.js';

/** ICE never sends STUN to these, whatever the networks allow. */
const NEVER = new Set(['unspecified', 'link-local', 'multicast', 'broadcast']);

/**
 * Which remote addresses ICE may talk to. An empty list of networks allows any unicast address;
 * tests restrict it to loopback so that no packet is ever sent anywhere else. `.local` (mDNS) names
 * pass only when allowed, for the engine to resolve.
 */
export class RemoteAddressFilter {
  readonly #allowed: BlockList | undefined;

  constructor(
    networks: readonly string[],
    private readonly allowMdns = false,
  ) {
    if (networks.length === 0) return;
    this.#allowed = new BlockList();
    for (const network of networks) {
      const [address, bits] = network.split('/');
      this.#allowed.addSubnet(address!, Number(bits), isIP(address!) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  allows(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return this.allowMdns && /^[\w-]{1,64}\.local$/i.test(address); // other host names are never resolved
    if (NEVER.has(classifyAddress(address)!)) return false;
    if (!this.#allowed) return true;
    return this.#allowed.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/**
 * Keeps the SDP's well-formed `a=candidate` lines whose address passes `keep`, and every line that
 * is no candidate; a candidate line that does not parse is dropped rather than handed on.
 */
export function filterCandidates(sdp: string, keep: (address: string) => boolean): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => {
      if (!line.startsWith('a=candidate')) return true;
      const m = CANDIDATE.exec(line);
      return m !== null && keep(m[1]!);
    })
    .join('\r\n');
}
