import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import type { Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { sleep, waitFor } from '../kit/processes.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { framesLost, MAX_LOSS, watchEventLoop } from './capacity.js';
import { round, type Bench } from './report.js';

/**
 * Beyond capacity, with the gateway's overload limits on (their defaults): streams are added one at
 * a time, a publish and its push, until the gateway refuses them or `maxPushes` run, then it is
 * held there while more are tried. What is measured: how many were taken, how many refused with 503,
 * and the frames the taken ones lost (the goal: < 0.5 % on every push).
 */
export async function overload(bench: Bench, fixture: Fixture, nginx: NginxRtmp, maxPushes: number): Promise<void> {
  console.log(
    `\nOverload: pushes added until the gateway refuses (overload limits at their defaults), then held ${bench.plan.capacitySeconds} s`,
  );
  const defaults = parseConfig({});
  const gateway = await GatewayProcess.start(join(bench.work, 'gateway-overload.log'), {
    GATEWAY_OVERLOAD_EVENT_LOOP_DELAY_MS: String(defaults.overload_event_loop_delay_ms),
    GATEWAY_OVERLOAD_EVENT_LOOP_UTILIZATION: String(defaults.overload_event_loop_utilization),
    GATEWAY_OVERLOAD_MACHINE_CPU_PERCENT: String(defaults.overload_machine_cpu_percent),
  });
  const publishers: SyntheticPublisher[] = [];
  const taken: string[] = [];
  let refused = 0;
  const failed: string[] = [];
  /** Adds one stream and its push; false when the gateway refuses either with 503. */
  const add = async (): Promise<boolean> => {
    const name = `over-${taken.length + refused}`;
    let publisher: SyntheticPublisher;
    try {
      publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
    } catch (error) {
      const message = (error as Error).message;
      if (/answered 503/.test(message)) refused++;
      // A publish that fails otherwise (the machine too busy for WebRTC to connect in time) ends the ramp and is counted.
      else failed.push(`publish: ${message.replace(/^over-\d+: /, '')}`);
      return false;
    }
    publishers.push(publisher);
    await sleep(1000);
    const reply = await gateway.request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
    if (reply.status === 503) {
      refused++;
      await publisher.stop();
      return false;
    }
    if (reply.status !== 200) {
      // Any other failure ends the ramp like a refusal and is counted: the run goes on.
      failed.push(`${reply.status} ${(reply.body as { error?: string })?.error ?? ''}`.trim());
      await publisher.stop();
      return false;
    }
    taken.push(name);
    return true;
  };
  try {
    while (taken.length < maxPushes && (await add()));
    const firstRefusalAt = taken.length;
    const loop = watchEventLoop(gateway);
    // Held there: more are tried every few seconds, and should be refused while it is loaded.
    const until = Date.now() + bench.plan.capacitySeconds * 1000;
    while (Date.now() < until) {
      await sleep(3000);
      if (taken.length < maxPushes) await add();
    }
    const loopP99 = await loop.stop();
    for (const publisher of publishers.splice(0)) await publisher.stop();
    await waitFor('every push to end', async () => (await gateway.ffmpegPids()).length === 0, 30_000, 100);
    // Pushes taken while held ran for less than the window: each is judged over its own span.
    const held = await framesLost(
      nginx,
      taken.slice(0, firstRefusalAt).map((name) => `rtmp_${name}`),
      fixture,
      bench.plan.capacitySeconds,
    );
    const late = await framesLost(
      nginx,
      taken.slice(firstRefusalAt).map((name) => `rtmp_${name}`),
      fixture,
      0,
    );
    const expected = held.expected + late.expected;
    const lost = held.lost + late.lost;
    const worst = Math.max(held.worst, late.worst);
    const lossPercent = (lost / Math.max(1, expected)) * 100;
    console.log(
      `  first refusal after ${firstRefusalAt} pushes; ${taken.length} taken in all, ${refused} refused with 503, ${failed.length} failed otherwise${failed.length ? ` (${failed.join(', ')})` : ''}; ` +
        `${lost}/${expected} frames lost on the taken ones (${round(lossPercent)} %, worst push ${round(worst * 100)} %); gateway event-loop delay p99 ${round(loopP99)} ms`,
    );
    bench.details.overload = {
      firstRefusalAt,
      taken: taken.length,
      refused,
      failed,
      framesExpected: expected,
      framesLost: lost,
      worstPushLossPercent: round(worst * 100),
      eventLoopDelayP99Ms: round(loopP99),
    };
    bench.report('overload: pushes taken before the first 503', firstRefusalAt, 'pushes');
    // The refusal should come near what the machine really carries, not a third below it.
    const sustained = bench.details.sustained as number | undefined;
    if (sustained)
      bench.report('overload: first 503, share of the sustained capacity', (firstRefusalAt / sustained) * 100, '%', {
        min: 90,
      });
    bench.report('overload: publishes and startups failed other than by a 503', failed.length, 'startups', { max: 0 });
    bench.report('overload: frames lost on the pushes taken', lossPercent, '%', { max: MAX_LOSS * 100 });
    bench.report('overload: worst push, frames lost', worst * 100, '%', { max: MAX_LOSS * 100 });
  } finally {
    for (const publisher of publishers) await publisher.stop();
    await gateway.stop();
  }
}
