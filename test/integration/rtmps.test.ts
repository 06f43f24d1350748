import t from 'tap';
import type { Test } from 'tap';
import { join } from 'node:path';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { ConfigError } from '../../src/config/load.js';
import { rtmpsTrust } from '../../src/rtmp/trust.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { testFixture } from '../helpers/synthetic.js';
import { TestCa, TlsTerminator } from '../helpers/tls.js';

// RTMPS the way ingest points do it: TLS terminated in front of a plain RTMP server (nginx-rtmp),
// certificates from a throw-away CA, a real WebRTC publisher without a browser.
const ca = TestCa.create();
const otherCa = TestCa.create();
t.teardown(() => {
  ca.remove();
  otherCa.remove();
});

let nginx: NginxRtmp;
let gw: TestGateway;
let publisher: SyntheticPublisher;
t.before(async () => {
  nginx = await NginxRtmp.start();
  gw = await startGateway({ rtmps_ca_file: ca.file });
  publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'secure');
});
t.teardown(async () => {
  await publisher.stop();
  await gw.close();
  await nginx.stop();
});

async function terminator(t: Test, certificate: ReturnType<TestCa['issue']>): Promise<TlsTerminator> {
  const tls = await TlsTerminator.start(certificate, nginx.rtmpPort);
  t.teardown(() => tls.close());
  return tls;
}

t.test('a certificate from the configured CA, for the host asked for by SNI: the stream arrives', async (t) => {
  const tls = await terminator(t, ca.issue(['localhost']));
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'secure',
    rtmpUrl: `rtmps://localhost:${tls.port}/live`,
  });
  t.equal(res.status, 200, JSON.stringify(res.body));
  const stream = await waitFor(
    'the stream at nginx-rtmp',
    async () => (await nginx.streams()).find((s) => s.name === 'rtmp_secure' && s.width > 0),
    10000,
  );
  t.match(stream, { width: 1280, height: 720, videoCodec: 'H264', audioCodec: 'AAC' });
  t.same(tls.serverNames, ['localhost'], 'the host name went out as SNI');
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId })).status, 200);
});

t.test('a certificate from an untrusted CA fails the startup with the reason', async (t) => {
  const tls = await terminator(t, otherCa.issue(['localhost']));
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'secure',
    rtmpUrl: `rtmps://localhost:${tls.port}/live`,
  });
  t.equal(res.status, 500);
  t.match(res.body.message, /could not publish to the destination: .*(certificate|issuer)/i);
  t.equal((await gw.post('/rest-api/push/find_all')).status, 404, 'nothing is left');
  t.notOk(
    (await nginx.streams()).some((s) => s.name === 'rtmp_secure'),
    'nothing reached the RTMP server',
  );
});

t.test('a trusted certificate for another host name fails the startup', async (t) => {
  const tls = await terminator(t, ca.issue(['other.example']));
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'secure',
    rtmpUrl: `rtmps://localhost:${tls.port}/live`,
  });
  t.equal(res.status, 500);
  t.match(res.body.message, /could not publish to the destination: .*localhost.*altnames|does not match/i);
});

t.test(
  'rtmps_ca_file that cannot be read, or holds no certificate, is a configuration error naming the key',
  async (t) => {
    t.throws(() => rtmpsTrust('/nonexistent/ca.pem'), ConfigError);
    t.throws(() => rtmpsTrust('/nonexistent/ca.pem'), /rtmps_ca_file: cannot read/);
    t.throws(
      () => rtmpsTrust(join(import.meta.dirname, 'rtmps.test.ts')),
      /rtmps_ca_file: .* holds no PEM certificate/,
    );
    t.ok(rtmpsTrust('', '/nonexistent/bundle').length > 100, "without a system bundle, Node's own CAs are trusted");
    t.equal(rtmpsTrust(ca.file).at(-1), ca.cert);
  },
);
