import t from 'tap';
import { TestBrowser } from '../../kit/browser.js';
import { startGateway, type TestGateway } from './gateway.js';
import { stopAllProcesses } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';

export interface Stage {
  nginx: NginxRtmp;
  gw: TestGateway;
  browser: TestBrowser;
}

/**
 * The end-to-end stage of a test file: nginx-rtmp, a gateway and headless Chromium, started before
 * the first test and stopped, with every process by PID, after the last one (also on failure).
 */
export function useStage(gatewayArgs: Parameters<typeof startGateway> = [], browserArgs: string[] = []): Stage {
  const stage = {} as Stage;
  t.before(async () => {
    stage.nginx = await NginxRtmp.start();
    stage.gw = await startGateway(...gatewayArgs);
    stage.browser = await TestBrowser.launch(browserArgs);
  });
  t.teardown(async () => {
    await stage.browser?.close();
    await stage.gw?.close();
    await stage.nginx?.stop();
    await stopAllProcesses();
  });
  return stage;
}
