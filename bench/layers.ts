import { TestBrowser } from '../kit/browser.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { sleep } from '../kit/processes.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import { gatewayCpu } from './proc.js';
import type { Report } from './report.js';

/**
 * A simulcast layer's push against a passthrough push of the same stream: Chromium publishes its
 * fake 1280x720 camera through the SDK with three simulcast layers (its OpenH264 encoders), and the
 * gateway's and its ffmpegs' CPU is measured with no push, with one push of the top layer, with one
 * of the low layer instead, and with the top one again (the noise floor). A low layer's push adds
 * a consumer in the media worker and a publisher of its own in the gateway, and nothing else.
 */
export async function layerCost(
  gateway: GatewayProcess,
  nginx: NginxRtmp,
  report: Report,
  seconds: number,
): Promise<Record<string, number>> {
  console.log(
    `\nA push of a simulcast layer against a passthrough push (Chromium's camera, three layers; ${seconds} s each)`,
  );
  const browser = await TestBrowser.launch();
  try {
    await browser.page.goto(`${gateway.baseUrl}/health`);
    const state = await browser.publishThroughSdk(gateway.baseUrl, { name: 'layers', simulcast: true });
    if (state !== 'PUBLISHING') throw new Error(`the simulcast publish did not start: ${state}`);
    await sleep(3000);
    const cpu = (): Promise<number> => gatewayCpu(gateway, seconds);
    const withPush = async (layer: string | undefined): Promise<number> => {
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName: 'layers',
        rtmpUrl: `${nginx.url()}/layer-${layer ?? 'top'}`,
        rtmpTransponderFullUrl: true,
        ...(layer ? { layer } : {}),
      });
      if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      if (reply.body.transcoding) throw new Error('the push transcodes: the stream came without simulcast');
      try {
        return await cpu();
      } finally {
        await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: reply.body.mediaSessionId });
      }
    };
    const alone = await cpu();
    const top = await withPush(undefined);
    const low = await withPush('low');
    const topAgain = await withPush(undefined);
    const passthrough = (top + topAgain) / 2 - alone;
    const noiseFloor = Math.abs(topAgain - top) / 2;
    report('layers: gateway and ffmpeg CPU, the simulcast stream with no push', alone, '% of a core');
    report('layers: a passthrough push of the top layer (above the stream alone)', passthrough, '% of a core');
    report('layers: a push of the low layer (above the stream alone)', low - alone, '% of a core', {
      max: Math.round(passthrough * 110) / 100,
    });
    report('layers: noise floor (half the two passthrough windows apart)', noiseFloor, '% of a core');
    return { alone, top, low, topAgain };
  } finally {
    await browser.close();
  }
}
