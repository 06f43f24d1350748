import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { probe } from '../kit/probe.js';
import { now, sleep, waitFor } from '../kit/processes.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { generatorSaid, LoadGenerator, Ramp, type GeneratorWindow, type LoadPublisher } from './load-generator.js';
import { cpuOver, rssMb, udpCounters } from './proc.js';
import { round, type Bench } from './report.js';

/** Video frames lost beyond this share fail a capacity step. */
export const MAX_LOSS = 0.005;

/**
 * Targets for a passthrough push's CPU (% of a core) at 16 pushes: the gateway, its media workers
 * and the push's ffmpeg, and the gateway's own threads; and the pushes two cores of the gateway's
 * own would carry at the largest step's cost. (One push alone: the latency section's passthrough.)
 */
const PER_PUSH_AT_16_MAX = 2.2;
const OWN_THREADS_AT_16_MAX = 0.6;
const PROJECTION_MIN = 100;

interface StepResult {
  pushes: number;
  /**
   * How the load generator kept to its publishers' schedule over the window: a step it could not
   * feed says nothing of the gateway.
   */
  generator: GeneratorWindow;
  running: number;
  /** Publishes and pushes the gateway refused with 503 (overloaded, or at a limit). */
  refused: number;
  /** Startups answered with another error (the status and code of each): counted, the step goes on. */
  failed: string[];
  /** Listings the gateway did not answer at the step's end (past its limit): the step cannot be judged, and fails. */
  unanswered: string[];
  framesExpected: number;
  framesLost: number;
  lossPercent: number;
  worstPushLossPercent: number;
  /** Node and its media worker processes (mediasoup), in percent of a core. */
  gatewayCpu: number;
  /** Gateway + ffmpeg CPU per push in each third of the window: the figure's spread. */
  perPushParts: number[];
  mediaWorkersCpu: number;
  ffmpegCpuEach: number;
  nginxCpu: number;
  publishersCpu: number;
  machineCpu: number;
  gatewayRssMb: number;
  /** UDP datagrams the machine dropped for a full receive buffer during the window, of all it received. */
  udpDropped: number;
  udpReceived: number;
  /** UDP sends refused for a full send buffer over the whole step, start-up included (the load generator's bursts). */
  udpSendsRefused: number;
  /** The worst second of any worker's event loop over the window: delay p99 (ms). */
  eventLoopDelayP99Ms: number;
  /** Where frames are missing in each push's recording: "<time> +<gap>". */
  gaps: Record<string, string[]>;
  /**
   * Where the gateway saw them go, by its own counters over the step: RTP packets never received
   * and frames left incomplete (the publisher's side), frames the pushes lost on their input and
   * dropped on their output (the gateway's side).
   */
  gatewaySaw: { packetsLost: number; framesIncomplete: number; pushFramesLost: number; pushFramesDropped: number };
  /**
   * RTP hop by hop over the whole step, every stream together: what the media engine received from
   * the publishers and lost on the way, sent on to the gateway's frame path, and what that path
   * received (undefined on an engine that does not count).
   */
  hops?: { engineReceived: number; engineLost: number; engineSent: number; gatewayReceived: number };
  /**
   * Video frames hop by hop, every stream together: sent by the publishers, made whole by the
   * gateway and written by its pushes (read at the end of the window), recorded by nginx (until
   * the pushes ended, a little later).
   */
  frameHops: { sent: number; made: number; written: number; recorded: number };
}

/**
 * Video frames missing from nginx's recordings of `streams` (each removed after): every push's
 * whole span at the fixture's rate, at least `seconds` of it, against the frames recorded.
 */
export async function framesLost(
  nginx: NginxRtmp,
  streams: string[],
  fixture: Fixture,
  seconds: number,
): Promise<{ expected: number; lost: number; worst: number; recorded: number; gaps: Record<string, string[]> }> {
  let expected = 0;
  let recorded = 0;
  let lost = 0;
  let worst = 0;
  const gaps: Record<string, string[]> = {};
  for (const stream of streams) {
    const file = nginx.recording(stream);
    const video = (await probe(file).catch(() => ({ video: [] }))).video.map((p) => Number(p.pts_time));
    const span = video.length > 1 ? video.at(-1)! - video[0]! : 0;
    const due = Math.max(Math.round(span * fixture.fps) + 1, seconds * fixture.fps);
    const missing = Math.max(0, due - video.length);
    expected += due;
    recorded += video.length;
    lost += missing;
    worst = Math.max(worst, missing / due);
    const holes = video.flatMap((t, i) =>
      i > 0 && t - video[i - 1]! > 1.5 / fixture.fps
        ? [`${video[i - 1]!.toFixed(3)} s +${(t - video[i - 1]!).toFixed(3)} s`]
        : [],
    );
    if (holes.length) gaps[stream] = holes;
    rmSync(file, { force: true });
  }
  return { expected, lost, worst, recorded, gaps };
}

/** Every worker's event-loop delay p99 over the last second (ms), from the gateway's /metrics. */
async function eventLoopDelays(gateway: GatewayProcess): Promise<number[]> {
  const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text();
  return [...text.matchAll(/^gateway_load\{worker="[^"]*",measure="event_loop_delay_p99_ms"\} (\S+)$/gm)].map((m) =>
    Number(m[1]),
  );
}

/** The largest event-loop delay p99 of any worker over any second while it runs, read every second. */
export function watchEventLoop(gateway: GatewayProcess): { stop(): Promise<number> } {
  let worst = 0;
  const timer = setInterval(
    () =>
      void eventLoopDelays(gateway).then(
        (ms) => (worst = Math.max(worst, ...ms)),
        () => undefined,
      ),
    1000,
  );
  return {
    async stop() {
      clearInterval(timer);
      return worst;
    },
  };
}

/**
 * Where the frames a failed step lost went missing, hop by hop from the publisher to the RTMP
 * server, by the first hop whose own counters say it lost some.
 */
function lossHop(
  step: Pick<
    StepResult,
    'udpDropped' | 'udpSendsRefused' | 'gatewaySaw' | 'running' | 'pushes' | 'framesLost' | 'hops'
  > &
    Partial<Pick<StepResult, 'frameHops' | 'unanswered'>>,
): string {
  if (step.unanswered?.length) return `unknown: the gateway did not answer ${step.unanswered.join(', ')}`;
  if (step.running < step.pushes) return `${step.pushes - step.running} pushes were not running`;
  if (step.udpSendsRefused > 0)
    return `the load generator's sends (${step.udpSendsRefused} refused for full send buffers)`;
  if (step.udpDropped > 0) return `the kernel's receive buffers (${step.udpDropped} datagrams dropped)`;
  const hops = step.hops;
  if (hops && hops.engineLost > 0)
    return `between the publishers and the media engine: ${hops.engineLost} RTP packets lost`;
  if (hops && hops.gatewayReceived < hops.engineSent)
    return `between the media engine and the gateway's frame path: ${hops.engineSent - hops.gatewayReceived} RTP packets sent, not received`;
  const saw = step.gatewaySaw;
  if (saw.packetsLost > 0)
    return `before the gateway's frame path: ${saw.packetsLost} RTP packets never reached it (the publisher's side or the media engine)`;
  if (saw.framesIncomplete > 0) return `reassembly: ${saw.framesIncomplete} frames incomplete`;
  if (saw.pushFramesLost + saw.pushFramesDropped > 0)
    return `the pushes: ${saw.pushFramesLost} lost on their input, ${saw.pushFramesDropped} dropped on their output`;
  const frames = step.frameHops;
  if (frames && frames.recorded < frames.written)
    return `after the gateway: the pushes wrote ${frames.written} frames, the server recorded ${frames.recorded}`;
  return step.framesLost > 0 ? "after the gateway: between its RTMP output and the server's recording" : 'none';
}

/** Runs `count` synthetic publishers each pushed to nginx-rtmp, and counts frames lost there. */
async function capacityStep(
  bench: Bench,
  gateway: GatewayProcess,
  fixture: Fixture,
  nginx: NginxRtmp,
  generator: LoadGenerator,
  count: number,
): Promise<StepResult> {
  const names = Array.from({ length: count }, (_, i) => `cap${count}-${i}`);
  const publishers: LoadPublisher[] = [];
  try {
    // A refusal (503) is counted, not an error: with its overload limits on, the gateway may refuse.
    let refused = 0;
    const failed: string[] = [];
    const unanswered: string[] = [];
    const published: string[] = [];
    const stepUdpBefore = udpCounters();
    for (const name of names) {
      try {
        publishers.push(await generator.publish(gateway.baseUrl, name));
        published.push(name);
      } catch (error) {
        if (!/answered 503/.test((error as Error).message)) throw error;
        refused++;
      }
    }
    await sleep(1000);
    for (const name of published) {
      const reply = await gateway.request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
      if (reply.status === 503) refused++;
      else if (reply.status !== 200)
        failed.push(`${reply.status} ${(reply.body as { error?: string })?.error ?? ''}`.trim());
    }
    await sleep(2000);
    const ffmpeg = await gateway.ffmpegPids();
    const mediaWorkers = await gateway.mediaWorkerPids();
    // The gateway's own processes: Node, its spawner (which starts the ffmpeg) and the media workers.
    const own = await gateway.ownPids();
    const loop = watchEventLoop(gateway);
    const udpBefore = udpCounters();
    await generator.open();
    const windowFrom = now();
    const measured = await cpuOver([...own, nginx.pid!, process.pid, ...ffmpeg], bench.plan.capacitySeconds);
    const cpu = measured.whole;
    const windowTo = now();
    const udpAfter = udpCounters();
    const loopP99 = await loop.stop();
    const gatewayRssMb = own.reduce((sum, pid) => sum + rssMb(pid), 0);
    // A gateway past its limit may not answer its listings: the step fails saying so, and the ramp ends there.
    const list = async <T>(path: string): Promise<T[]> => {
      const reply = await gateway.request('POST', path);
      if (Array.isArray(reply.body)) return reply.body as T[];
      unanswered.push(`${path} answered ${reply.status} ${(reply.body as { error?: string })?.error ?? ''}`.trim());
      return [];
    };
    const listed = await list<{
      state: string;
      counters: { frames: number; framesLost: number; framesDropped?: number };
    }>('/rest-api/push/find_all');
    const running = listed.filter((t) => t.state === 'running').length;
    type Hops = NonNullable<StepResult['hops']>;
    const streams = await list<{ packetsLost: number; framesLost: number; frames: number; hops: Hops | null }>(
      '/rest-api/stream/find_all',
    );
    const sum = <T>(list: T[], value: (item: T) => number | undefined): number =>
      list.reduce((total, item) => total + (value(item) ?? 0), 0);
    const gatewaySaw = {
      packetsLost: sum(streams, (s) => s.packetsLost),
      framesIncomplete: sum(streams, (s) => s.framesLost),
      pushFramesLost: sum(listed, (t) => t.counters.framesLost),
      pushFramesDropped: sum(listed, (t) => t.counters.framesDropped),
    };
    const hops = streams.every((s) => s.hops)
      ? {
          engineReceived: sum(streams, (s) => s.hops!.engineReceived),
          engineLost: sum(streams, (s) => s.hops!.engineLost),
          engineSent: sum(streams, (s) => s.hops!.engineSent),
          gatewayReceived: sum(streams, (s) => s.hops!.gatewayReceived),
        }
      : undefined;
    // Read last, so that the frames the publishers sent are counted after those the gateway made.
    const kept = await generator.window(windowFrom, windowTo, publishers.length);
    await Promise.allSettled(publishers.splice(0).map((publisher) => publisher.stop()));
    // A gateway past its limit (or a machine the load generator saturated) ends its pushes slowly.
    await waitFor('every push to end', async () => (await gateway.ffmpegPids()).length === 0, 120_000, 100);

    const { expected, lost, worst, recorded, gaps } = await framesLost(
      nginx,
      names.map((name) => `rtmp_${name}`),
      fixture,
      bench.plan.capacitySeconds,
    );
    const each = (pids: number[]): number =>
      pids.reduce((sum, pid) => sum + cpu.percent.get(pid)!, 0) / Math.max(1, pids.length);
    return {
      pushes: count,
      generator: kept,
      running,
      refused,
      failed,
      unanswered,
      framesExpected: expected,
      framesLost: lost,
      lossPercent: round((lost / expected) * 100),
      worstPushLossPercent: round(worst * 100),
      gatewayCpu: round(cpu.of(own)),
      perPushParts: measured.parts.map((part) =>
        round(part.of(own) / count + part.of(ffmpeg) / Math.max(1, ffmpeg.length)),
      ),
      mediaWorkersCpu: round(cpu.of(mediaWorkers)),
      ffmpegCpuEach: round(each(ffmpeg)),
      nginxCpu: round(cpu.percent.get(nginx.pid!)!),
      publishersCpu: round(cpu.percent.get(process.pid)!),
      machineCpu: round(cpu.machinePercent),
      gatewayRssMb: round(gatewayRssMb),
      udpDropped: udpAfter.receiveBufferErrors - udpBefore.receiveBufferErrors,
      udpSendsRefused: udpAfter.sendBufferErrors - stepUdpBefore.sendBufferErrors,
      udpReceived: udpAfter.received - udpBefore.received,
      eventLoopDelayP99Ms: round(loopP99),
      gaps,
      gatewaySaw,
      hops,
      frameHops: {
        sent: kept.framesSent,
        made: sum(streams, (s) => s.frames),
        written: sum(listed, (t) => t.counters.frames),
        recorded,
      },
    };
  } finally {
    await Promise.allSettled(publishers.map((publisher) => publisher.stop()));
  }
}

export async function capacity(
  bench: Bench,
  gateway: GatewayProcess,
  fixture: Fixture,
  nginx: NginxRtmp,
): Promise<void> {
  console.log(
    `\nCapacity: concurrent passthrough pushes to nginx-rtmp, ${bench.plan.capacitySeconds} s a step, < ${MAX_LOSS * 100} % video frames lost`,
  );
  const steps: StepResult[] = [];
  let sustained = 0;
  // Past the first failed step the ramp goes on once: a saturated machine should shed its newest
  // pushes and keep the others, which that step's count of pushes still running shows.
  let failedSteps = 0;
  const generator = new LoadGenerator(fixture);
  const ramp = new Ramp(bench.plan.capacitySteps);
  try {
    for (let count = ramp.next(); count !== undefined; count = ramp.next()) {
      const step = await capacityStep(bench, gateway, fixture, nginx, generator, count);
      steps.push(step);
      if (!step.generator.fed) {
        const back = ramp.notFed(count);
        console.log(
          `  ${count} pushes: ${generatorSaid(step.generator)}: it could not feed its publishers, ` +
            `so the step says nothing of the gateway; ${back ? `${back} pushes next` : 'the ramp ends here'}`,
        );
        continue;
      }
      const ok = step.unanswered.length === 0 && step.running === count && step.lossPercent < MAX_LOSS * 100;
      ramp.fed(count, !ok);
      console.log(
        `  ${count} pushes: ${step.running} running, ${step.refused} refused, ${step.failed.length} failed${step.failed.length ? ` (${step.failed.join(', ')})` : ''}, ${step.framesLost}/${step.framesExpected} frames lost (${step.lossPercent} %, worst push ${step.worstPushLossPercent} %); ` +
          `CPU % of a core: gateway ${step.gatewayCpu} (media workers ${step.mediaWorkersCpu}), ffmpeg ${step.ffmpegCpuEach} each, nginx ${step.nginxCpu}, publishers ${step.publishersCpu}; machine ${step.machineCpu} % busy; ` +
          `worst worker event-loop delay p99 ${step.eventLoopDelayP99Ms} ms; ${generatorSaid(step.generator)}; UDP datagrams dropped for full receive buffers ${step.udpDropped} of ${step.udpReceived}, sends refused for full send buffers ${step.udpSendsRefused}; ` +
          (step.hops
            ? `RTP hop by hop: the engine received ${step.hops.engineReceived} (lost ${step.hops.engineLost} on the way), sent ${step.hops.engineSent}, the frame path received ${step.hops.gatewayReceived}; `
            : '') +
          `video frames: the publishers sent ${step.frameHops.sent}, the gateway made ${step.frameHops.made}, its pushes wrote ${step.frameHops.written}, nginx recorded ${step.frameHops.recorded}; ` +
          `the gateway saw ${step.gatewaySaw.packetsLost} RTP packets lost, ${step.gatewaySaw.framesIncomplete} frames incomplete, ${step.gatewaySaw.pushFramesLost} lost and ${step.gatewaySaw.pushFramesDropped} dropped by pushes -> ${ok ? 'sustained' : `FAILED (lost at: ${lossHop(step)})`}`,
      );
      if (!ok) {
        console.log(
          `  past capacity at ${count} pushes: ${step.running} of ${count} kept running (the gateway sheds the newest when saturated)`,
        );
        bench.report(
          `capacity: pushes kept running at the ${failedSteps === 0 ? 'first' : 'second'} step past capacity (${count})`,
          step.running,
          'pushes',
        );
        if (++failedSteps === 2) break;
        continue;
      }
      if (failedSteps === 0) sustained = count;
    }
  } finally {
    await generator.close();
  }
  bench.details.capacity = steps;
  // A step the load generator could not feed counts neither for the gateway nor against it.
  const fedSteps = steps.filter((s) => s.generator.fed);
  bench.details.sustained = sustained;
  bench.report(
    'capacity: startups failed other than by a 503',
    fedSteps.reduce((sum, s) => sum + s.failed.length, 0),
    'startups',
    { max: 0 },
  );
  // The cost of one more push, once the gateway's fixed costs are shared: at the first step and
  // at the largest one sustained; its target at 16 (another, against the peer in the same run: see
  // the peer section).
  const sustainedSteps = fedSteps.filter((s) => s.pushes <= sustained);
  for (const step of new Set([sustainedSteps[0], sustainedSteps.find((s) => s.pushes === 16), sustainedSteps.at(-1)])) {
    if (!step) continue;
    const target = step.pushes === 16 && !bench.quick ? { max: PER_PUSH_AT_16_MAX } : undefined;
    bench.report(
      `gateway + ffmpeg CPU per push at ${step.pushes} pushes`,
      step.gatewayCpu / step.pushes + step.ffmpegCpuEach,
      '% of a core',
      { ...target, runs: step.perPushParts, runsAre: 'thirds of its window' },
    );
  }
  const at16 = fedSteps.find((s) => s.pushes === 16);
  if (at16) {
    const ownThreads = (at16.gatewayCpu - at16.mediaWorkersCpu) / 16;
    bench.report(
      "the gateway's own threads per push at 16 pushes",
      ownThreads,
      '% of a core',
      bench.quick ? undefined : { max: OWN_THREADS_AT_16_MAX },
    );
    bench.report('worst worker event-loop delay p99 at 16 pushes', at16.eventLoopDelayP99Ms, 'ms', { max: 20 });
  }
  bench.report(`concurrent passthrough pushes sustained on ${cpus().length} cores`, sustained, 'pushes');
  // Frames may be lost only once the machine is saturated: how busy it was at the first step that lost some.
  const failedStep = steps.find((s) => s.pushes > sustained && s.generator.fed);
  if (failedStep && failedStep.running === failedStep.pushes)
    bench.report('machine busy at the first step that lost frames', failedStep.machineCpu, '%', { min: 90 });
  // What the load generator on the same machine takes from the gateway, and what the gateway
  // would carry on a machine of its own (90 % of every core for the gateway and its ffmpeg).
  const largest = sustainedSteps.at(-1);
  if (largest) {
    const perPush = largest.gatewayCpu / largest.pushes + largest.ffmpegCpuEach;
    bench.report(
      `gateway alone, CPU per push at ${largest.pushes} pushes`,
      largest.gatewayCpu / largest.pushes,
      '% of a core',
    );
    bench.report(
      `load generator, CPU per stream at ${largest.pushes} pushes`,
      largest.publishersCpu / largest.pushes,
      '% of a core',
    );
    bench.report(
      `projection: pushes on ${cpus().length} cores with no load generator or RTMP server beside`,
      Math.floor((cpus().length * 90) / perPush),
      'pushes',
      {
        min: bench.quick ? 0 : PROJECTION_MIN,
      },
    );
  }
}
