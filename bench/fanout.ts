import { sleep } from '../kit/processes.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { CpuWindow } from './proc.js';
import type { Report } from './report.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';

/**
 * The gateway with no stream, then one stream pushed to no destination, to one, then to three
 * passthrough destinations: the gateway's CPU for each, what the stream adds to the gateway with
 * none, and what every destination after the first adds. What a stream's work costs once (receiving,
 * reordering, reassembling frames) is not paid again per destination.
 */
export async function fanout(gateway: GatewayProcess, fixture: Fixture, nginx: NginxRtmp, report: Report, seconds: number): Promise<Record<string, number>> {
  console.log(`\nOne stream to 1 and to 3 passthrough destinations (${seconds} s each)`);
  // The gateway with no stream at all: its timers, load sampling and media workers, which a
  // stream's figure is measured above.
  await sleep(2000);
  const alonePids = await gateway.ownPids();
  const aloneWindow = new CpuWindow(alonePids);
  await sleep(seconds * 1000);
  const alone = aloneWindow.end().of(alonePids);
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'fanout');
  const ids: string[] = [];
  const cpuWith = async (count: number): Promise<number> => {
    while (ids.length < count) {
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName: 'fanout',
        rtmpUrl: `${nginx.url()}/fanout-${ids.length}`,
        rtmpTransponderFullUrl: true,
      });
      if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      ids.push(reply.body.mediaSessionId);
    }
    await sleep(2000);
    // The gateway and every ffmpeg it runs: a destination costs both.
    const pids = [...(await gateway.ownPids()), ...(await gateway.ffmpegPids())];
    const window = new CpuWindow(pids);
    await sleep(seconds * 1000);
    return window.end().of(pids);
  };
  try {
    await sleep(1000);
    const idle = await cpuWith(0);
    const one = await cpuWith(1);
    const three = await cpuWith(3);
    // One destination again: how far two windows of the same load differ is the floor below which a difference is noise.
    for (const mediaSessionId of ids.splice(1)) await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId });
    const oneAgain = await cpuWith(1);
    const noiseFloor = Math.abs(oneAgain - one) / 2;
    report('fan-out: gateway CPU with no stream', alone, '% of a core');
    report('fan-out: gateway CPU, stream with no destination (above the gateway with none)', idle - alone, '% of a core', { max: 2 });
    report('fan-out: gateway and ffmpeg CPU, 1 destination', one, '% of a core');
    report('fan-out: gateway and ffmpeg CPU, 3 destinations', three, '% of a core');
    report('fan-out: gateway and ffmpeg CPU per destination after the first', (three - (one + oneAgain) / 2) / 2, '% of a core', { max: 0.6, noiseFloor });
    return { alone, idle, one, three, oneAgain };
  } finally {
    for (const mediaSessionId of ids) await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId });
    await publisher.stop();
  }
}
