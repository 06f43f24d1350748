import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { whipPublish } from '../helpers/e2e.js';
import { waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';
import { TestCa } from '../helpers/tls.js';

// HTTPS and WSS served by the gateway itself: headless Chromium on a page of another origin
// publishes through the SDK over wss:// and through WHIP over https://, to a certificate from a
// throw-away CA that Chromium is told to trust by its key (no system store is touched).

const ca = TestCa.create();
const certificate = ca.issue(['localhost', '127.0.0.1']);
const dir = mkdtempSync(join(tmpdir(), 'gateway-https-'));
writeFileSync(join(dir, 'cert.pem'), certificate.cert);
writeFileSync(join(dir, 'key.pem'), certificate.key);
const spki = createHash('sha256')
  .update(new X509Certificate(certificate.cert).publicKey.export({ type: 'spki', format: 'der' }))
  .digest('base64');

// The integrator's page, on another origin (https://localhost:<its port>), loading the SDK from the gateway.
let gatewayOrigin = '';
const pageServer = createServer(certificate, (_req, res) => {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><title>app</title><script type="module">
    import { createSession } from '${gatewayOrigin}/sdk/gateway.js';
    window.publishSdk = (name, rtmpUrl) => new Promise((resolve) => {
      const session = createSession({ urlServer: '${gatewayOrigin.replace('https:', 'wss:')}' });
      session.on('FAILED', (e) => resolve('session failed: ' + e.info));
      session.on('ESTABLISHED', () => {
        window.sdkStream = session.createStream({ name, rtmpUrl });
        window.sdkStream.on('PUBLISHING', () => resolve('PUBLISHING')).on('FAILED', (e) => resolve('failed: ' + e.info)).publish();
      });
    });
  </script>`);
});
await new Promise<void>((r) => pageServer.listen(0, '127.0.0.1', r));
const pageOrigin = `https://localhost:${(pageServer.address() as { port: number }).port}`;
t.teardown(() => {
  pageServer.closeAllConnections();
  pageServer.close();
  ca.remove();
  rmSync(dir, { recursive: true, force: true });
});

const stage = useStage(
  [
    {
      https_cert_file: join(dir, 'cert.pem'),
      https_key_file: join(dir, 'key.pem'),
      http_allowed_origins: [pageOrigin],
    },
  ],
  [`--ignore-certificate-errors-spki-list=${spki}`],
);

t.test('a page on another origin publishes through the SDK over wss:// and through WHIP over https://', async (t) => {
  gatewayOrigin = stage.gw.baseUrl;
  t.match(gatewayOrigin, /^https:\/\/127\.0\.0\.1:\d+$/, 'the gateway serves HTTPS');
  const page = stage.browser.page;
  await page.goto(pageOrigin + '/');
  await page.waitForFunction(() => typeof (window as any).publishSdk === 'function', undefined, { timeout: 10_000 });

  const status = await page.evaluate(
    ([name, url]) => (window as any).publishSdk(name, url),
    ['tls-sdk', stage.nginx.url()],
  );
  t.equal(status, 'PUBLISHING', 'the SDK published over wss://');
  const sdkStream = await waitFor(
    'the SDK push at nginx-rtmp',
    async () => (await stage.nginx.streams()).find((s) => s.name === 'rtmp_tls-sdk' && s.width > 0),
    20_000,
  );
  t.match(sdkStream, { videoCodec: 'H264', audioCodec: 'AAC', width: 1280, height: 720 });

  const whip = await whipPublish(page, `${gatewayOrigin}/whip/tls-whip`);
  t.equal(whip.status, 201, 'WHIP over https:// from the page');
  await waitFor('the WHIP publisher', async () => stage.gw.publishers.get('tls-whip')?.state === 'publishing', 15_000);
  await new Promise((r) => setTimeout(r, 1000));
  const startup = await stage.gw.app.inject({
    method: 'POST',
    url: '/rest-api/push/startup',
    payload: { streamName: 'tls-whip', rtmpUrl: stage.nginx.url() },
  });
  t.equal(startup.statusCode, 200, startup.body);
  const whipStream = await waitFor(
    'the WHIP push at nginx-rtmp',
    async () => (await stage.nginx.streams()).find((s) => s.name === 'rtmp_tls-whip' && s.width > 0),
    15_000,
  );
  t.match(whipStream, { videoCodec: 'H264', width: 1280, height: 720 });
});

t.test("the page of an origin not listed cannot open the SDK's WebSocket", async (t) => {
  const page = stage.browser.page;
  const outcome = await page.evaluate(
    async (url) => {
      return new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
      });
    },
    gatewayOrigin.replace('https:', 'wss:') + '/ws',
  );
  t.equal(outcome, 'open', `${pageOrigin} is listed`);
  await page.goto('about:blank');
  const other = await stage.browser.context.newPage();
  t.teardown(() => other.close());
  await other.goto(`${gatewayOrigin.replace('127.0.0.1', 'localhost')}/health`);
  const fromOther = await other.evaluate(
    async (url) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
      }),
    gatewayOrigin.replace('https:', 'wss:') + '/ws',
  );
  t.equal(fromOther, 'refused', 'a page of https://localhost:<gateway port> (another origin, not listed) is refused');
});
