import { isIP, isIPv4 } from 'node:net';

/**
 * IP address arithmetic for the gateway's outbound policies (RTMP destinations, ICE): addresses as
 * 16-byte values, IPv4 mapped into IPv6 (`::ffff:a.b.c.d`) so that a mapped or compatible spelling of
 * a refused IPv4 address is refused too.
 */
export type AddressClass =
  'unspecified' | 'link-local' | 'multicast' | 'broadcast' | 'reserved' | 'loopback' | 'private' | 'public';

/** The 16 bytes of an IP address (IPv4 as ::ffff:a.b.c.d), or undefined for anything else. */
export function addressBytes(address: string): Uint8Array | undefined {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...bare.split('.').map(Number)]);
  if (family !== 6) return undefined;
  let text = bare;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 && isIPv4(v4[1]!)) {
    tail.push(...v4[1]!.split('.').map(Number));
    text = text.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string | undefined): number[] =>
    s
      ? s
          .split(':')
          .filter((g) => g !== '')
          .map((g) => parseInt(g, 16))
      : [];
  const left = groups(head);
  const right = groups(rest);
  const all =
    rest === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  if (tail.length) bytes.set(tail, 12);
  return bytes;
}

/** A CIDR block (or a single address) as bytes and a prefix length over the 128-bit form. */
export interface Network {
  bytes: Uint8Array;
  bits: number;
}

export function parseNetwork(text: string): Network | undefined {
  const [address, bits, extra] = text.split('/');
  if (extra !== undefined || address === undefined) return undefined;
  const bytes = addressBytes(address);
  if (!bytes) return undefined;
  const v4 = isIPv4(address);
  const max = v4 ? 32 : 128;
  const n = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(n) || n < 0 || n > max) return undefined;
  return { bytes, bits: v4 ? n + 96 : n };
}

export function inNetwork(bytes: Uint8Array, network: Network): boolean {
  for (let bit = 0; bit < network.bits; bit += 8) {
    const mask = network.bits - bit >= 8 ? 0xff : (0xff << (8 - (network.bits - bit))) & 0xff;
    if ((bytes[bit / 8]! & mask) !== (network.bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

const nets = (...blocks: string[]): Network[] => blocks.map((b) => parseNetwork(b)!);

/** First match wins: the order puts the narrower, always-refused classes first. */
const CLASSES: [AddressClass, Network[]][] = [
  ['unspecified', nets('0.0.0.0/8', '::/128')],
  ['broadcast', nets('255.255.255.255/32')],
  ['loopback', nets('127.0.0.0/8', '::1/128')],
  ['link-local', nets('169.254.0.0/16', 'fe80::/10')],
  ['multicast', nets('224.0.0.0/4', 'ff00::/8')],
  [
    'reserved',
    nets(
      '240.0.0.0/4',
      '192.0.0.0/24',
      '192.0.2.0/24',
      '198.51.100.0/24',
      '203.0.113.0/24',
      '2001:db8::/32',
      '100::/64',
    ),
  ],
  ['private', nets('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '198.18.0.0/15', 'fc00::/7')],
];

/**
 * IPv6 forms that carry an IPv4 destination, and where: the packets end at that IPv4 address, so
 * the address is judged by it. Each returns the IPv4 bytes, or undefined when the form does not apply.
 */
const EMBEDDINGS: [Network, (bytes: Uint8Array) => Uint8Array][] = [
  // IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96, RFC 6052), SIIT's IPv4-translated
  // form (::ffff:0:a.b.c.d, RFC 7915) and NAT64 local-use (64:ff9b:1::/48, RFC 8215; the /96 layout).
  ...['::/96', '64:ff9b::/96', '::ffff:0:0:0/96', '64:ff9b:1::/48'].map(
    (n) => [parseNetwork(n)!, (b: Uint8Array) => b.subarray(12)] as [Network, (b: Uint8Array) => Uint8Array],
  ),
  // 6to4 (2002:a.b.c.d::/48, RFC 3056): the IPv4 follows the prefix.
  [parseNetwork('2002::/16')!, (b) => b.subarray(2, 6)],
  // Teredo (2001:0::/32, RFC 4380): the client's IPv4, where packets are delivered, stored inverted.
  [parseNetwork('2001::/32')!, (b) => b.subarray(12).map((x) => x ^ 0xff)],
];

/** What kind of address this is; an IPv6 address that embeds IPv4 (see EMBEDDINGS) is judged by the IPv4 one. */
export function classifyAddress(address: string): AddressClass | undefined {
  let bytes = addressBytes(address);
  if (!bytes) return undefined;
  const unspecifiedOrLoopback = inNetwork(bytes, CLASSES[0]![1][1]!) || inNetwork(bytes, CLASSES[2]![1][1]!);
  const embedding = unspecifiedOrLoopback ? undefined : EMBEDDINGS.find(([network]) => inNetwork(bytes!, network));
  if (embedding) bytes = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...embedding[1](bytes)]);
  for (const [kind, networks] of CLASSES) if (networks.some((n) => inNetwork(bytes!, n))) return kind;
  return 'public';
}
