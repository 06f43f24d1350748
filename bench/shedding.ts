import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Fixture } from '../kit/fixture.js';
import { CpuHog, raise } from '../kit/cpu-hog.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { sleep, waitFor } from '../kit/processes.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import type { PushInfo } from '../src/pushes/info.js';
import { UNSHED_AFTER_MS } from '../src/plane/shedder.js';
import type { Bench } from './report.js';

/** Pushes running that shedding must not go below (`shed_min_pushes`). */
const FLOOR = 2;
/** The pushes of one stream, each to its own name at nginx: what shedding one of them frees differs. */
const PUSHES: Record<string, Record<string, unknown>> = {
  'transcode-360': { height: 360 },
  'transcode-240': { height: 240 },
  'shared-a': { height: 180 },
  'shared-b': { height: 180 },
  'pass-a': {},
  'pass-b': {},
};
const SAMPLE_MS = 2000;

/** A push the shedder ended and has not started again. */
const isShed = (push: PushInfo): boolean => push.state !== 'running' && /saturated/.test(push.lastError ?? '');

/**
 * Shedding on real pushes over minutes: a gateway in worker threads with six pushes of one stream
 * (two transcoding, two sharing an encoder, two passed through), `shed_min_pushes` 2, and busy
 * loops beside it, one per core at a higher priority (nice -10, each a session of its own), for 5
 * minutes (1 with `--quick`). The state of every push is read every 2 s. What is measured: the
 * sheds (in all, and of one push at most: a push shed and started again while the load lasts is
 * flapping, which the backoff bounds to twice in 5 min), the most shed at once (never past the
 * floor: 4 of 6 with `shed_min_pushes` 2), and once the busy loops end, how long until every push
 * is running again.
 */
export async function shedding(bench: Bench, fixture: Fixture, nginx: NginxRtmp): Promise<void> {
  const loadMs = (bench.quick ? 1 : 5) * 60_000;
  const hogCount = cpus().length;
  console.log(
    `\nShedding: ${Object.keys(PUSHES).length} pushes, ${hogCount} busy loops at nice -10 beside the gateway for ${loadMs / 60_000} min, then none`,
  );
  const gateway = await GatewayProcess.start(join(bench.work, 'gateway-shedding.log'), {
    GATEWAY_WORKERS: 'auto',
    GATEWAY_SHED_MIN_PUSHES: String(FLOOR),
  });
  let hog: CpuHog | undefined;
  let publisher: SyntheticPublisher | undefined;
  try {
    publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'shedding');
    /** Every push, or undefined when the gateway did not answer (a starved gateway may take long). */
    const find = async (): Promise<PushInfo[] | undefined> => {
      const reply = await gateway.request('POST', '/rest-api/push/find_all', {}).catch(() => undefined);
      return reply?.status === 200 ? (reply.body as PushInfo[]) : undefined;
    };
    const names = new Map<string, string>();
    for (const [name, fields] of Object.entries(PUSHES)) {
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName: 'shedding',
        rtmpUrl: `${nginx.url()}/shed-${name}`,
        rtmpTransponderFullUrl: true,
        ...fields,
      });
      if (reply.status !== 200) throw new Error(`push ${name}: ${reply.status} ${JSON.stringify(reply.body)}`);
      names.set((reply.body as PushInfo).mediaSessionId, name);
    }
    const allRunning = async (): Promise<boolean> => (await find())?.every((p) => p.state === 'running') ?? false;
    await waitFor('every push running', allRunning, 60_000, 500);

    // The busy loops above the gateway's priority (nice -10 against 0: a tenth of each core is left
    // to it), the benchmark above both (its publishers and its reads go on as the network and an
    // operator would).
    await raise(0, -20);
    hog = await CpuHog.start(-10, loadMs / 1000 + 10, hogCount);
    const sheds = new Map<string, number>();
    let fewestRunning = Infinity;
    let mostShedAtOnce = 0;
    let startedAgain = 0;
    let unanswered = 0;
    const wasShed = new Set<string>();
    const until = Date.now() + loadMs;
    while (Date.now() < until) {
      await sleep(SAMPLE_MS);
      const pushes = await find();
      if (!pushes) {
        unanswered++;
        continue;
      }
      fewestRunning = Math.min(fewestRunning, pushes.filter((p) => p.state === 'running').length);
      mostShedAtOnce = Math.max(mostShedAtOnce, pushes.filter(isShed).length);
      for (const push of pushes) {
        const name = names.get(push.mediaSessionId) ?? push.mediaSessionId;
        sheds.set(name, push.counters.sheds);
        const shed = isShed(push);
        if (wasShed.has(name) && push.state === 'running') startedAgain++;
        if (shed) wasShed.add(name);
        else wasShed.delete(name);
      }
    }
    await hog.stop();
    const calmAt = Date.now();
    const mostSheds = Math.max(0, ...sheds.values());
    const longestBackoff = UNSHED_AFTER_MS[Math.min(mostSheds, UNSHED_AFTER_MS.length) - 1] ?? 0;
    await waitFor('every push running again', allRunning, longestBackoff + 60_000, 500);
    const backS = (Date.now() - calmAt) / 1000;
    const shedList = [...sheds].filter(([, count]) => count > 0).map(([name, count]) => `${name} ${count}`);
    console.log(
      `  shed: ${shedList.join(', ') || 'none'}; started again while loaded: ${startedAgain}; ` +
        `most shed at once: ${mostShedAtOnce}; fewest running (shed or not): ${fewestRunning}; reads unanswered: ${unanswered}; all running again ${backS.toFixed(1)} s after the load ended`,
    );
    bench.details.shedding = {
      loadMs,
      hogs: hogCount,
      sheds: Object.fromEntries(sheds),
      startedAgain,
      fewestRunning,
      backS,
    };
    const total = [...sheds.values()].reduce((sum, count) => sum + count, 0);
    bench.report('shedding: pushes shed under a load from another program', total, 'sheds');
    bench.report('shedding: sheds of one push while the load lasts', mostSheds, 'sheds', { max: 2 });
    // Pushes not running by themselves (an ffmpeg that does not keep up, replaced) are not shed:
    // the floor holds for what the shedder ends.
    bench.report('shedding: pushes shed at once, at most', mostShedAtOnce, 'pushes', {
      max: Object.keys(PUSHES).length - FLOOR,
    });
    bench.report('shedding: every push running again after the load', backS, 's', {
      max: (longestBackoff + 30_000) / 1000,
    });
  } finally {
    await hog?.stop();
    await raise(0, 0);
    await publisher?.stop();
    await gateway.stop();
  }
}
