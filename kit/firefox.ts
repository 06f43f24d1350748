import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { pidsMatching } from './processes.js';

const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

/**
 * Headless Debian Firefox ESR, driven over WebDriver BiDi, with a fake camera and microphone that
 * need no permission prompt. Its ICE is left as a user's is: it gathers its host addresses and
 * never pairs a loopback candidate, so it reaches a gateway on an address of the machine's own.
 * Nothing of it calls home: updates, telemetry, captive portal and safe browsing checks are off.
 */
export class TestFirefox {
  private constructor(
    readonly browser: Browser,
    readonly page: Page,
    private readonly profile: string,
  ) {}

  static async launch(): Promise<TestFirefox> {
    const profile = await mkdtemp(join(tmpdir(), 'firefox-profile-'));
    try {
      const browser = await puppeteer.launch({
        browser: 'firefox',
        executablePath: FIREFOX,
        headless: true,
        userDataDir: profile,
        extraPrefsFirefox: {
          'media.navigator.streams.fake': true,
          'media.navigator.permission.disabled': true,
          'media.autoplay.default': 0,
          'app.update.disabledForTesting': true,
          'browser.safebrowsing.malware.enabled': false,
          'browser.safebrowsing.phishing.enabled': false,
          'network.captive-portal-service.enabled': false,
          'network.connectivity-service.enabled': false,
          'datareporting.policy.dataSubmissionEnabled': false,
          'toolkit.telemetry.enabled': false,
          'media.gmp-manager.updateEnabled': false,
          'extensions.update.enabled': false,
        },
      });
      const page = (await browser.pages())[0] ?? (await browser.newPage());
      page.on('pageerror', (error) => process.stderr.write(`firefox page error: ${(error as Error).message}\n`));
      return new TestFirefox(browser, page, profile);
    } catch (error) {
      await TestFirefox.#reap(profile);
      throw error;
    }
  }

  /** Closes the browser, then kills by PID anything of it that is left. */
  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    await TestFirefox.#reap(this.profile);
  }

  static async #reap(profile: string): Promise<void> {
    for (const pid of await pidsMatching(profile)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    await rm(profile, { recursive: true, force: true });
  }
}
