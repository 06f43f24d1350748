import t from 'tap';
import { classifyAddress } from '../../src/security/addresses.js';
import {
  DestinationPolicy,
  destinationResolver,
  type DestinationPolicyConfig,
} from '../../src/security/destination-policy.js';

const policy = (over: Partial<DestinationPolicyConfig> = {}): DestinationPolicy =>
  new DestinationPolicy({
    allowLoopback: false,
    allowPrivate: false,
    allowedHosts: [],
    deniedHosts: [],
    allowedPorts: [],
    ...over,
  });

t.test('addresses are classified in every spelling, IPv4 inside IPv6 judged as IPv4', async (t) => {
  const cases: [string, string][] = [
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['127.0.0.2', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['::127.0.0.1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.31.255.1', 'private'],
    ['192.168.1.50', 'private'],
    ['100.64.0.1', 'private'],
    ['fd00::1', 'private'],
    ['224.0.0.251', 'multicast'],
    ['ff02::fb', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', 'public'],
    ['2a00:1450:4001::1', 'public'],
    ['172.32.0.1', 'public'],
    // SIIT (RFC 7915), 6to4 (RFC 3056), Teredo (RFC 4380, the client's IPv4 inverted), NAT64 local-use (RFC 8215)
    ['::ffff:0:127.0.0.1', 'loopback'],
    ['::ffff:0:a9fe:a9fe', 'link-local'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'link-local'],
    ['2002:c0a8:0132::1', 'private'],
    ['2002:0808:0808::1', 'public'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'],
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private'],
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'public'],
    ['64:ff9b:1::7f00:1', 'loopback'],
    ['64:ff9b:1::a00:1', 'private'],
    ['64:ff9b:1::808:808', 'public'],
    ['2001:db8::1', 'reserved'],
  ];
  for (const [address, kind] of cases) t.equal(classifyAddress(address), kind, address);
  t.equal(classifyAddress('example.com'), undefined);
});

t.test('always refused, whatever the configuration', async (t) => {
  const open = policy({ allowLoopback: true, allowPrivate: true });
  for (const address of [
    '169.254.169.254',
    '0.0.0.0',
    '::',
    'fe80::1',
    '224.0.0.1',
    '255.255.255.255',
    '::ffff:169.254.169.254',
  ]) {
    t.throws(
      () => open.check(address, 1935, [address]),
      { code: 'invalid_request', field: 'rtmpUrl', message: /never allowed/ },
      address,
    );
  }
});

t.test('loopback and private need their switch, or the address in the allowed list', async (t) => {
  t.throws(
    () => policy().check('127.0.0.1', 1935, ['127.0.0.1']),
    /loopback address, not allowed \(set destination_allow_loopback/,
  );
  t.throws(
    () => policy().check('10.0.0.1', 1935, ['10.0.0.1']),
    /private address, not allowed \(set destination_allow_private/,
  );
  t.throws(() => policy().check('rtmp.lan', 1935, ['192.168.1.5']), /host rtmp.lan resolves to a private address/);
  t.doesNotThrow(() => policy({ allowLoopback: true }).check('127.0.0.1', 1935, ['127.0.0.1']));
  t.doesNotThrow(() => policy({ allowPrivate: true }).check('10.0.0.1', 1935, ['10.0.0.1']));
  t.doesNotThrow(() => policy({ allowedHosts: ['192.168.1.50'] }).check('192.168.1.50', 1935, ['192.168.1.50']));
  t.doesNotThrow(() => policy().check('a.rtmp.youtube.com', 1935, ['142.250.1.1']));
});

t.test('one refused answer refuses the name, and the message does not tell the address', async (t) => {
  const error = t.throws(() => policy().check('mixed.example', 1935, ['142.250.1.1', '10.1.2.3'])) as Error;
  t.match(error.message, /private/);
  t.notMatch(error.message, /10\.1\.2\.3/);
});

t.test('allowed and denied hosts, by name pattern and by CIDR; allowed ports', async (t) => {
  const only = policy({ allowedHosts: ['*.youtube.com', 'live-api-s.facebook.com', '203.0.113.0/24'] });
  t.doesNotThrow(() => only.check('a.rtmp.youtube.com', 1935, ['142.250.1.1']));
  t.doesNotThrow(() => only.check('LIVE-API-S.facebook.com', 443, ['157.240.1.1']));
  t.throws(() => only.check('youtube.com.evil.example', 1935, ['8.8.8.8']), /not among the allowed destinations/);
  t.throws(() => only.check('twitch.tv', 1935, ['8.8.8.8']), /not among the allowed/);
  const denied = policy({ deniedHosts: ['*.internal.example', '8.8.0.0/16'] });
  t.throws(() => denied.checkName('db.internal.example', 1935), /denied/);
  t.throws(() => denied.check('dns.example', 1935, ['8.8.8.8']), /denied/);
  const ports = policy({ allowedPorts: [1935, 443] });
  t.throws(() => ports.checkName('a.example', 22), { field: 'rtmpUrl', message: /port 22 is not allowed/ });
  t.doesNotThrow(() => ports.checkName('a.example', 443));
});

t.test('the resolver looks up once and returns the checked address; literals are not looked up', async (t) => {
  const asked: string[] = [];
  const lookup = async (host: string): Promise<string[]> => {
    asked.push(host);
    if (host === 'loop.example') return ['127.0.0.1'];
    if (host === 'meta.example') return ['169.254.169.254'];
    throw new Error('ENOTFOUND');
  };
  const resolve = destinationResolver(lookup, policy({ allowLoopback: true }));
  t.equal(await resolve('loop.example', 1935), '127.0.0.1');
  t.equal(await resolve('127.0.0.9', 1935), '127.0.0.9');
  await t.rejects(resolve('meta.example', 1935), { field: 'rtmpUrl', message: /link-local/ });
  await t.rejects(resolve('nope.example', 1935), { message: /does not resolve/ });
  t.same(asked, ['loop.example', 'meta.example', 'nope.example']);
});
