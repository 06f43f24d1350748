/**
 * The benchmark: startup time, added latency, audio commands, cost per push and capacity, each
 * beside its target.
 * Prints a table and writes JSON. `--quick` runs a smaller version in about a minute.
 *
 *   npm run bench -- [--quick] [--only startup,sdk,latency,frame-path,drift,fanout,outputs,audio,aac,resilience,stalls,isolation,capacity,overload,shedding,cluster,mixer,peer,thumbnails,uploads] [--steps 8,16,24]
 *                    [--out file.json] [--log-level debug] [--profile: CPU profile of the gateway
 *                    in .bench/profiles, for Chrome DevTools or speedscope]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFixture, PROGRAMME, PROGRAMME_AV1 } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { stopAllProcesses } from '../kit/processes.js';
import { RtmpReceiver } from '../kit/rtmp-receiver.js';
import { NginxRtmp } from '../kit/rtmp-server.js';
import { aacCoders } from './aac.js';
import { audioCommands } from './audio-commands.js';
import { capacity } from './capacity.js';
import { fanout, renditionFanout } from './fanout.js';
import { layerCost } from './layers.js';
import { glassToGlass } from './glass.js';
import { av1AtOnce, av1Beside, captionsBeside, push } from './latency.js';
import { captionCost } from './captions.js';
import { framePathCost } from './frame-path.js';
import { driftDay } from './drift.js';
import { outputs } from './outputs.js';
import { overload } from './overload.js';
import { shedding } from './shedding.js';
import { peer } from './peer.js';
import { cluster } from './cluster.js';
import { benchPlan, Figures, type Bench } from './report.js';
import { destinationRestart, networkCut, reconnectCycles } from './resilience.js';
import { restStartup, sdkStartup } from './startup.js';
import { stalls } from './stalls.js';
import { isolation } from './isolation.js';
import { mixer } from './mixer.js';
import { thumbnailCost } from './thumbnails.js';
import { uploadCost } from './uploads.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: '.bench/results.json' },
    steps: { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    profile: { type: 'boolean', default: false },
  },
});
const quick = args.quick!;
const sections = new Set(
  (
    args.only ??
    'startup,sdk,latency,frame-path,drift,fanout,outputs,audio,aac,resilience,stalls,isolation,capacity,overload,shedding,cluster,mixer,peer,thumbnails,uploads'
  ).split(','),
);
const plan = benchPlan(quick);
if (args.steps) plan.capacitySteps = args.steps.split(',').map(Number);
const WORK = resolve('.bench');

const figures = new Figures();
const report = figures.report;
const details: Record<string, unknown> = {};
const bench: Bench = { quick, plan, report, details, work: WORK };

/**
 * Runs section `name` when it was asked for, then prints the benchmark process's own memory: it
 * hosts the synthetic publishers and the RTMP receiver, and a growth there shows section by section.
 */
async function step(name: string, run: () => Promise<unknown>): Promise<void> {
  if (!sections.has(name)) return;
  await run();
  const { heapUsed, rss } = process.memoryUsage();
  console.log(
    `  (after ${name}, the benchmark process: heap ${Math.round(heapUsed / 1048576)} MB, RSS ${Math.round(rss / 1048576)} MB)`,
  );
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const fixture = loadFixture(join(WORK, 'fixture'), PROGRAMME);
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
    ffmpeg: execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0],
  };
  console.log(
    `Benchmark (${quick ? 'quick' : 'full'}) on ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}, ${machine.ffmpeg}`,
  );
  const gateway = await GatewayProcess.start(
    join(WORK, 'gateway.log'),
    { GATEWAY_LOG_LEVEL: args['log-level']! },
    args.profile
      ? ['--cpu-prof', `--cpu-prof-dir=${join(WORK, 'profiles')}`]
      : process.env.BENCH_NODE_ARGS
        ? process.env.BENCH_NODE_ARGS.split(' ')
        : [],
  );
  const receiver = await RtmpReceiver.start();
  let nginx: NginxRtmp | undefined;
  try {
    await step('startup', () => restStartup(bench, gateway, fixture, receiver));
    await step('sdk', () => sdkStartup(bench, gateway, receiver));
    await step('latency', async () => {
      const passthrough = await push(bench, gateway, fixture, receiver, 'passthrough');
      captionsBeside(bench, passthrough, await push(bench, gateway, fixture, receiver, 'captions'));
      const av1 = loadFixture(join(WORK, 'fixture'), PROGRAMME_AV1);
      av1Beside(bench, passthrough, await push(bench, gateway, av1, receiver, 'av1'));
      await av1AtOnce(bench, { h264: fixture, av1 }, receiver);
      captionCost(bench);
      await push(bench, gateway, fixture, receiver, 'transcode');
      await push(bench, gateway, fixture, receiver, 'vertical');
    });
    await step('frame-path', async () => framePathCost(bench, fixture));
    await step('drift', async () => driftDay(bench, fixture));
    await step('audio', () => audioCommands(bench, gateway, fixture, receiver));
    await step('aac', async () => aacCoders(bench));
    await step('resilience', async () => {
      console.log('\nResilience: destination restarts, 10 s network cuts, reconnect cycles');
      details.restartMs = await destinationRestart(gateway, fixture, report, plan.restartDownMs);
      details.networkCutMs = await networkCut(gateway, fixture, report, plan.cutRuns);
      await reconnectCycles(join(WORK, 'gateway-cycles.log'), fixture, report, plan.reconnectCycles);
    });
    await step('fanout', async () => {
      nginx ??= await NginxRtmp.start();
      details.fanoutCpu = await fanout(gateway, fixture, nginx, report, plan.pushSeconds);
      details.renditionFanoutCpu = await renditionFanout(gateway, fixture, nginx, report, plan.pushSeconds);
      details.layerCpu = await layerCost(gateway, nginx, report, plan.pushSeconds);
    });
    await step('outputs', async () => {
      nginx ??= await NginxRtmp.start();
      await outputs(bench, gateway, fixture, nginx);
      await glassToGlass(bench, gateway, plan.pushSeconds);
    });
    await step('stalls', async () => {
      nginx ??= await NginxRtmp.start();
      await stalls(bench, gateway, fixture, nginx);
    });
    await step('isolation', () => isolation(bench, gateway, fixture));
    await step('capacity', async () => {
      nginx ??= await NginxRtmp.start();
      await capacity(bench, gateway, fixture, nginx);
    });
    await step('overload', async () => {
      nginx ??= await NginxRtmp.start();
      await overload(bench, fixture, nginx, quick ? 6 : 72);
    });
    await step('shedding', async () => {
      nginx ??= await NginxRtmp.start();
      await shedding(bench, fixture, nginx);
    });
    await step('cluster', () => cluster(bench, fixture, receiver));
    await step('mixer', () => mixer(bench, fixture, receiver));
    await step('peer', async () => {
      nginx ??= await NginxRtmp.start();
      await peer(bench, fixture, receiver, nginx);
    });
    await step('thumbnails', () => thumbnailCost(bench, fixture));
    await step('uploads', () => uploadCost(bench, fixture));
  } finally {
    await receiver.close();
    await nginx?.stop();
    await gateway.stop();
    await stopAllProcesses();
  }
  figures.printTable();
  const out = resolve(args.out!);
  writeFileSync(
    out,
    JSON.stringify(
      { date: new Date().toISOString(), mode: quick ? 'quick' : 'full', machine, figures: figures.all, details },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nwritten to ${out}`);
}

let aborting = false;
/** Ends the benchmark early, stopping every process it started (they run in process groups of their own); once. */
function abort(why: string, code: number): void {
  if (aborting) return;
  aborting = true;
  console.error(`\n${why}: stopping every process the benchmark started`);
  void stopAllProcesses().finally(() => process.exit(code));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => abort(signal, 130));
// A throw in a timer or a listener (a publisher's, the receiver's) never reaches `main`'s promise; a
// timer's throws go on every tick meanwhile.
process.on('uncaughtException', (error) => {
  if (!aborting) console.error(error);
  abort('uncaught exception', 1);
});

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    console.error(error);
    await stopAllProcesses();
    process.exit(1);
  },
);
