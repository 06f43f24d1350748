import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { pidsMatching } from './processes.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless Debian Chromium with a fake 1280x720 camera and microphone. Loopback candidates are
 * allowed and not hidden behind mDNS names, so WebRTC runs entirely on 127.0.0.1.
 */
export class TestBrowser {
  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    private readonly profile: string,
  ) {}

  static async launch(extraArgs: string[] = []): Promise<TestBrowser> {
    const profile = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
        '--allow-loopback-in-peer-connection',
        '--disable-features=WebRtcHideLocalIpsWithMdns',
        ...extraArgs,
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => process.stderr.write(`page error: ${error.message}\n`));
    return new TestBrowser(context, page, profile);
  }

  /**
   * Publishes from the page through the gateway's SDK (loaded from `origin`, a page of which must
   * be open): `stream` as `createStream` takes it. Resolves with `PUBLISHING`, or with why not; the
   * stream is then `window.sdkStream`.
   */
  publishThroughSdk(origin: string, stream: object): Promise<string> {
    return this.page.evaluate(
      async ([from, options]) => {
        const { createSession } = await import(`${from}/sdk/gateway.js`);
        return new Promise<string>((resolve) => {
          const session = createSession({ urlServer: from });
          session.on('FAILED', (e: { info: string }) => resolve(`session failed: ${e.info}`));
          session.on('ESTABLISHED', () => {
            const created = session.createStream(options);
            (window as unknown as { sdkStream: unknown }).sdkStream = created;
            created
              .on('PUBLISHING', () => resolve('PUBLISHING'))
              .on('FAILED', (e: { info: string }) => resolve(`failed: ${e.info}`));
            created.publish();
          });
        });
      },
      [origin, stream] as const,
    );
  }

  /** Closes the browser, then kills by PID anything of it that is left. */
  async close(): Promise<void> {
    await this.context.close().catch(() => {});
    for (const pid of await pidsMatching(this.profile)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    await rm(this.profile, { recursive: true, force: true });
  }
}
