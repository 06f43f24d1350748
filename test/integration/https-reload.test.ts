import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { freePort } from '../../kit/rtmp-server.js';
import { testFixture } from '../helpers/synthetic.js';
import { TestCa } from '../helpers/tls.js';

// HTTPS on a second port beside HTTP; SIGHUP makes new connections get the renewed certificate
// while a live push goes on untouched.

const ca = TestCa.create();
const dir = mkdtempSync(join(tmpdir(), 'gateway-reload-'));
const receiver = await RtmpReceiver.start();
t.teardown(async () => {
  await stopAllProcesses();
  await receiver.close();
  ca.remove();
  rmSync(dir, { recursive: true, force: true });
});

function install(names: string[]): string {
  const certificate = ca.issue(names);
  writeFileSync(join(dir, 'next-cert.pem'), certificate.cert);
  writeFileSync(join(dir, 'next-key.pem'), certificate.key);
  copyFileSync(join(dir, 'next-cert.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(dir, 'next-key.pem'), join(dir, 'key.pem'));
  return certificate.cert;
}

/** The fingerprint of the certificate the HTTPS port serves to a new connection. */
function served(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.cert }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

t.test('SIGHUP reloads the certificate for new connections; live pushes go on', async (t) => {
  install(['localhost', 'first.test']);
  const httpsPort = await freePort();
  const gateway = await GatewayProcess.start(
    join(dir, 'gateway.log'),
    {
      GATEWAY_HTTPS_CERT_FILE: join(dir, 'cert.pem'),
      GATEWAY_HTTPS_KEY_FILE: join(dir, 'key.pem'),
      GATEWAY_HTTPS_PORT: String(httpsPort),
      GATEWAY_LOG_LEVEL: 'info', // the reloads are told at info
    },
    ['--import', 'tsx'],
    'kit/server-from-source.ts',
  );
  const publisher = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'live');
  t.teardown(() => publisher.stop());
  await waitFor(
    'a keyframe to push',
    async () => (await gateway.request('POST', '/rest-api/stream/find', { name: 'live' })).body?.[0]?.keyframes >= 1,
    15000,
  );
  const started = await gateway.request('POST', '/rest-api/push/startup', {
    streamName: 'live',
    rtmpUrl: receiver.url(),
  });
  t.equal(started.status, 200, 'a push over the HTTP port');

  const first = await served(httpsPort);
  const renewed = install(['localhost', 'renewed.test']);
  t.equal(await served(httpsPort), first, 'before SIGHUP the old certificate is served');
  process.kill(gateway.pid, 'SIGHUP');
  const logFile = join(dir, 'gateway.log');
  await waitFor(
    'the reload to be logged',
    () => readFileSync(logFile, 'utf8').includes('certificates reloaded'),
    15000,
  );
  const second = await served(httpsPort);
  t.not(second, first, 'after SIGHUP a new connection gets the renewed certificate');
  t.match(renewed, /BEGIN CERTIFICATE/);

  const [push] = (await gateway.request('POST', '/rest-api/push/find', { streamName: 'live' })).body;
  t.equal(push.state, 'running', 'the push runs on');
  t.equal(push.counters.reconnects, 0, 'without reconnecting');
  t.equal(receiver.connections, 1, 'on its one RTMP connection');

  writeFileSync(join(dir, 'key.pem'), 'not a key');
  process.kill(gateway.pid, 'SIGHUP');
  await waitFor(
    'the failed reload to be logged',
    () => readFileSync(logFile, 'utf8').includes('certificates not reloaded'),
    15000,
  );
  t.equal(await served(httpsPort), second, 'a broken renewal keeps the certificate in use');
  t.equal((await fetch(gateway.baseUrl + '/health')).status, 200, 'and the gateway running');
});
