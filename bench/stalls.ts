import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { sleep, waitFor } from '../kit/processes.js';
import { RtmpReceiver } from '../kit/rtmp-receiver.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { WhepViewer } from '../kit/whep-viewer.js';
import { round, type Bench } from './report.js';

/** The main thread's event loop is sampled every 50 ms (see `createMetrics`); its histogram holds the period too. */
const MAIN_RESOLUTION_MS = 50;
/** Workers report 1 s windows: after a step, the window that held its end is waited for. */
const WORKER_WINDOW_MS = 1000;
/** The most a lifecycle step may hold an event loop (ms). */
const STALL_TARGET_MS = 20;

/** The longest each event loop was held since the last read: the main thread's, and the worst worker's. */
async function loopMax(gateway: GatewayProcess): Promise<{ main: number; worker: number }> {
  const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text();
  const main = Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1] ?? 0) * 1000 - MAIN_RESOLUTION_MS;
  const workers = [...text.matchAll(/^gateway_load\{worker="[^"]*",measure="event_loop_delay_max_ms"\} (\S+)$/gm)].map(
    (m) => Number(m[1]),
  );
  return { main: Math.max(0, main), worker: Math.max(0, ...workers) };
}

/** Reads every loop's longest hold every 200 ms while a step runs, and after it until the workers' window closed. */
async function watched<T>(
  gateway: GatewayProcess,
  step: () => Promise<T>,
): Promise<{ result: T; main: number; worker: number }> {
  const worst = { main: 0, worker: 0 };
  const read = async (): Promise<void> => {
    const now = await loopMax(gateway).catch(() => ({ main: 0, worker: 0 }));
    worst.main = Math.max(worst.main, now.main);
    worst.worker = Math.max(worst.worker, now.worker);
  };
  // The workers' windows of whatever came before are behind; then a read resets the main thread's
  // histogram. What was read so far is not this step's.
  await sleep(WORKER_WINDOW_MS + 100);
  await read();
  worst.main = worst.worker = 0;
  let running = true;
  const poller = (async () => {
    while (running) {
      await sleep(200);
      await read();
    }
  })();
  try {
    const result = await step();
    await sleep(WORKER_WINDOW_MS + 200);
    return { result, ...worst };
  } finally {
    running = false;
    await poller;
  }
}

/**
 * How long each lifecycle step holds an event loop, with other streams and pushes running on the
 * same threads: publish, push start, snapshot, WHEP offer, reconnect after the destination
 * restarted, recording start, terminate, unpublish. Each is done `runs` times; its figure is the
 * longest any loop (the main thread's, every worker's) was held while it ran, against 20 ms, with each
 * run's own beside it (the spread: a run's longest hold swings two to three times run to run).
 */
export async function stalls(bench: Bench, gateway: GatewayProcess, fixture: Fixture, nginx: NginxRtmp): Promise<void> {
  const runs = bench.quick ? 1 : 3;
  const neighbours = bench.quick ? 2 : 8;
  console.log(
    `\nStalls: the longest each lifecycle step holds an event loop, ${neighbours} streams pushing beside it (${runs} runs)`,
  );
  const background: SyntheticPublisher[] = [];
  const ids: string[] = [];
  const worst = new Map<string, { main: number; worker: number; runs: number[] }>();
  const note = (step: string, held: { main: number; worker: number }): void => {
    const before = worst.get(step) ?? { main: 0, worker: 0, runs: [] };
    worst.set(step, {
      main: Math.max(before.main, held.main),
      worker: Math.max(before.worker, held.worker),
      runs: [...before.runs, round(Math.max(held.main, held.worker))],
    });
  };
  const startPush = async (streamName: string, rtmpUrl: string): Promise<string> => {
    const reply = await gateway.request('POST', '/rest-api/push/startup', {
      streamName,
      rtmpUrl,
      rtmpTransponderFullUrl: true,
    });
    if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    ids.push(reply.body.mediaSessionId);
    return reply.body.mediaSessionId as string;
  };
  const state = async (mediaSessionId: string): Promise<string | undefined> =>
    (await gateway.push(mediaSessionId))?.state;
  let receiver = await RtmpReceiver.start();
  try {
    for (let i = 0; i < neighbours; i++) {
      background.push(await SyntheticPublisher.publish(fixture, gateway.baseUrl, `neighbour${i}`));
      await waitFor(
        `a keyframe of neighbour${i}`,
        async () =>
          (await gateway.request('POST', '/rest-api/stream/find', { name: `neighbour${i}` })).body?.[0]?.video,
        15_000,
      );
      await startPush(`neighbour${i}`, `${nginx.url()}/neighbour${i}`);
    }
    for (let run = 0; run < runs; run++) {
      const name = `stall${run}`;
      const published = await watched(gateway, () => SyntheticPublisher.publish(fixture, gateway.baseUrl, name));
      note('publish (WHIP offer to connected)', published);
      const publisher = published.result;
      try {
        await waitFor(
          `a keyframe of ${name}`,
          async () => (await gateway.request('POST', '/rest-api/stream/find', { name })).body?.[0]?.video,
          15_000,
        );
        const pushed = await watched(gateway, async () => {
          const id = await startPush(name, `${receiver.url()}/${name}`);
          await waitFor('the push running', async () => (await state(id)) === 'running', 15_000);
          return id;
        });
        note('push start (to running)', pushed);
        note(
          'snapshot',
          await watched(gateway, async () => {
            const reply = await fetch(`${gateway.baseUrl}/rest-api/stream/snapshot`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ name }),
            });
            await reply.arrayBuffer();
            if (reply.status !== 200) throw new Error(`snapshot answered ${reply.status}`);
          }),
        );
        note(
          'WHEP offer (to connected, then closed)',
          await watched(gateway, async () => {
            const viewer = await WhepViewer.watch(gateway.baseUrl, name);
            await viewer.close();
          }),
        );
        const port = receiver.port;
        await receiver.close();
        await waitFor('the push reconnecting', async () => (await state(pushed.result)) !== 'running', 15_000);
        note(
          'reconnect (destination back to running)',
          await watched(gateway, async () => {
            receiver = await RtmpReceiver.start(port);
            await waitFor('the push running again', async () => (await state(pushed.result)) === 'running', 30_000);
          }),
        );
        note('recording start (first part open)', await watched(gateway, () => startPush(name, 'record://')));
        note(
          'terminate (two pushes)',
          await watched(gateway, async () => {
            for (const id of ids.splice(neighbours))
              await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: id });
          }),
        );
      } finally {
        note('unpublish', await watched(gateway, () => publisher.stop()));
      }
    }
  } finally {
    for (const mediaSessionId of ids) await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId });
    const recorded = await gateway.request('POST', '/rest-api/recording/find_all', {});
    for (const { fileName, streamName } of recorded.status === 200
      ? (recorded.body as { fileName: string; streamName: string }[])
      : []) {
      if (streamName.startsWith('stall')) await gateway.request('POST', '/rest-api/recording/delete', { fileName });
    }
    for (const publisher of background) await publisher.stop();
    await receiver.close();
  }
  for (const [step, held] of worst) {
    console.log(
      `  ${step}: main thread held ${round(held.main)} ms, worst worker ${round(held.worker)} ms; each run's longest: ${held.runs.join(', ')} ms`,
    );
    bench.report(`stalls: ${step}, longest event-loop hold`, Math.max(held.main, held.worker), 'ms', {
      max: STALL_TARGET_MS,
      runs: held.runs,
    });
  }
  bench.details.stalls = Object.fromEntries(
    [...worst].map(([step, held]) => [
      step,
      { mainMs: round(held.main), workerMs: round(held.worker), runsMs: held.runs },
    ]),
  );
}
