import t from 'tap';
import type { NetworkInterfaceInfo } from 'node:os';
import {
  ipv4DefaultInterface,
  ipv6DefaultInterface,
  noIceCheckWarning,
  resolveIceAddresses,
  type RouteTable,
} from '../../src/ingest/ice-addresses.js';
import { firstCandidateKind } from '../../src/ingest/sdp.js';

const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
`;
const IPV6_ROUTE = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

const info = (address: string, family: 'IPv4' | 'IPv6', internal = false, scopeid = 0): NetworkInterfaceInfo =>
  ({
    address,
    family,
    internal,
    netmask: '',
    mac: '',
    cidr: null,
    ...(family === 'IPv6' ? { scopeid } : {}),
  }) as NetworkInterfaceInfo;

const machine = (ipv4?: string, ipv6?: string): RouteTable => ({
  defaultInterfaces: () => ({ ipv4, ipv6 }),
  interfaces: () => ({
    lo: [info('127.0.0.1', 'IPv4', true), info('::1', 'IPv6', true)],
    eth0: [info('fe80::1', 'IPv6', false, 2), info('10.0.2.15', 'IPv4')],
    eth1: [info('fe80::2', 'IPv6', false, 3), info('fd00::5', 'IPv6')],
  }),
});

t.test("the default route's interface is read from the kernel's tables", async (t) => {
  t.equal(ipv4DefaultInterface(ROUTE), 'eth0');
  t.equal(
    ipv4DefaultInterface(ROUTE.replace('\t0003\t', '\t0002\t')),
    undefined,
    'a route that is not up is not the default',
  );
  t.equal(ipv4DefaultInterface(ROUTE.split('\n').slice(0, 2).join('\n')), undefined, 'no default route');
  t.equal(ipv6DefaultInterface(IPV6_ROUTE), 'eth1', "the loopback's unreachable ::/0 is not a default route");
  t.equal(ipv6DefaultInterface(''), undefined);
});

t.test("default-route stands for the address of the default route's interface, beside the named ones", async (t) => {
  t.same(
    resolveIceAddresses(['127.0.0.1', 'default-route'], machine('eth0', 'eth1')),
    { addresses: ['127.0.0.1', '10.0.2.15'], unresolved: undefined },
    'IPv4 first',
  );
  t.same(
    resolveIceAddresses(['default-route'], machine(undefined, 'eth1')).addresses,
    ['fd00::5'],
    'IPv6 when only IPv6 has a default route, never link-local',
  );
  t.same(
    resolveIceAddresses(['10.0.2.15', 'default-route'], machine('eth0')).addresses,
    ['10.0.2.15'],
    'each address once',
  );
  t.same(
    resolveIceAddresses(['203.0.113.10'], machine('eth0')).addresses,
    ['203.0.113.10'],
    'named addresses only: nothing is added',
  );
  const none = resolveIceAddresses(['127.0.0.1', 'default-route'], machine());
  t.same(none.addresses, ['127.0.0.1']);
  t.match(none.unresolved, /no default route/);
  t.same(
    resolveIceAddresses(['default-route'], machine('eth9')).addresses,
    [],
    'an interface without an address names nothing',
  );
});

t.test(
  'the warning for a publisher whose ICE checks never come names what was announced and what the offer showed',
  async (t) => {
    const offer = (candidate: string): string => `v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n${candidate}a=mid:0\r\n`;
    t.equal(firstCandidateKind(offer('a=candidate:0 1 UDP 2122252543 192.0.2.7 50123 typ host\r\n')), 'IPv4 host');
    t.equal(
      firstCandidateKind(offer('a=candidate:1 1 udp 2122262783 2001:db8::7 50123 typ srflx raddr :: rport 0\r\n')),
      'IPv6 srflx',
    );
    t.equal(
      firstCandidateKind(offer('a=candidate:2 1 udp 2122262783 0b7e4c4e-5a52-4f3b.local 50123 typ host\r\n')),
      'mDNS host',
    );
    t.equal(firstCandidateKind(offer('')), 'none');
    t.match(
      noIceCheckWarning(['127.0.0.1'], 'IPv4 host', 4000),
      /within 4 s: the gateway announces 127\.0\.0\.1 and the offer's first candidate is IPv4 host; Firefox and Safari never pair a loopback address/,
    );
    t.match(noIceCheckWarning(['127.0.0.1', '10.0.2.15'], 'IPv4 host', 4000), /cannot reach those addresses/);
    t.match(noIceCheckWarning(['10.0.2.15'], 'none', 4000), /carried no candidate/);
  },
);
