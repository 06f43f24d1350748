/**
 * The benchmark: startup time, added latency, audio commands, cost per push and capacity, each
 * beside its target.
 * Prints a table and writes JSON. `--quick` runs a smaller version in about a minute.
 *
 *   npm run bench -- [--quick] [--only startup,sdk,latency,fanout,audio,resilience,capacity] [--steps 8,16,24]
 *                    [--out file.json] [--log-level debug] [--profile: CPU profile of the gateway
 *                    in .bench/profiles, for Chrome DevTools or speedscope]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TestBrowser } from '../kit/browser.js';
import { probe } from '../kit/probe.js';
import { now, stopAllProcesses, sleep, waitFor } from '../kit/processes.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../kit/rtmp-receiver.js';
import { NginxRtmp } from '../kit/rtmp-server.js';
import { changeLatency, levelsOfFrames } from './audio-commands.js';
import { destinationRestart, networkCut, reconnectCycles } from './resilience.js';
import { median, percentile } from '../kit/stats.js';
import { fanout } from './fanout.js';
import { Figures, round } from './report.js';
import { loadFixture, type Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { CpuWindow, rssMb } from './proc.js';
import { flvNals, SyntheticPublisher } from '../kit/synthetic-publisher.js';

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
const sections = new Set((args.only ?? 'startup,sdk,latency,fanout,audio,resilience,capacity').split(','));
const plan = quick
  ? { startupRuns: 3, sdkRuns: 3, audioRuns: 2, restartDownMs: [200, 800], cutRuns: 1, reconnectCycles: 20, pushSeconds: 8, capacitySteps: [2, 4], capacitySeconds: 6 }
  : {
      startupRuns: 10,
      sdkRuns: 10,
      audioRuns: 6,
      restartDownMs: [100, 300, 500, 700, 900],
      cutRuns: 3,
      reconnectCycles: 100,
      pushSeconds: 20,
      capacitySteps: [8, 16, 24, 32, 40, 48, 56, 64],
      capacitySeconds: 15,
    };
if (args.steps) plan.capacitySteps = args.steps.split(',').map(Number);
const MAX_LOSS = 0.005;
const WORK = resolve('.bench');

const figures = new Figures();
const report = figures.report;
const details: Record<string, unknown> = {};

/** The next video frame (not a sequence header) the receiver gets for `streamName`. */
function firstVideo(receiver: RtmpReceiver, streamName: string, timeoutMs = 10_000): Promise<RtmpMediaMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      receiver.off('media', listener);
      reject(new Error(`no video for ${streamName} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (message: RtmpMediaMessage): void => {
      if (message.kind !== 'video' || message.sequenceHeader || message.publish.streamName !== streamName) return;
      clearTimeout(timer);
      receiver.off('media', listener);
      resolve(message);
    };
    receiver.on('media', listener);
  });
}

function ended(receiver: RtmpReceiver, streamName: string): Promise<void> {
  return new Promise((resolve) => {
    const listener = (publish: { streamName: string }): void => {
      if (publish.streamName !== streamName) return;
      receiver.off('end', listener);
      resolve();
    };
    receiver.on('end', listener);
  });
}

async function startup(gateway: GatewayProcess, fixture: Fixture, receiver: RtmpReceiver): Promise<void> {
  console.log(`\nStartup from /push/startup, stream already publishing (${plan.startupRuns} runs)`);
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'startup');
  const replies: number[] = [];
  const firsts: number[] = [];
  try {
    await sleep(2500);
    for (let run = 0; run < plan.startupRuns; run++) {
      const first = firstVideo(receiver, 'rtmp_startup');
      const done = ended(receiver, 'rtmp_startup');
      const t0 = now();
      const reply = await gateway.request('POST', '/rest-api/push/startup', { streamName: 'startup', rtmpUrl: receiver.url() });
      if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      replies.push(now() - t0);
      firsts.push((await first).arrivalMs - t0);
      await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: reply.body.mediaSessionId });
      await done;
      await sleep(150 + run * 97 % 400); // lands each run at another point of the GOP
    }
  } finally {
    await publisher.stop();
  }
  details.startupRest = { replyMs: replies.map(round), firstFrameMs: firsts.map(round) };
  report('/push/startup -> 200, median', median(replies) / 1000, 's');
  report('/push/startup -> first video frame at RTMP server, median', median(firsts) / 1000, 's', { max: 0.5 });
  report('/push/startup -> first video frame at RTMP server, p95', percentile(firsts, 95) / 1000, 's', { max: 0.5 });
}

/**
 * Audio commands on a live push: from the reply to mute, unmute or sound_on (muted, the shipped
 * chime) to the first audio frame at the RTMP server that carries the change.
 */
async function audioCommands(gateway: GatewayProcess, fixture: Fixture, receiver: RtmpReceiver): Promise<void> {
  console.log(`\nAudio commands on a live push (${plan.audioRuns} runs of mute, sound_on, unmute)`);
  const name = 'audio-commands';
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
  const messages: RtmpMediaMessage[] = [];
  const collect = (m: RtmpMediaMessage): void => {
    if (m.kind === 'audio' && m.publish.streamName === `rtmp_${name}`) messages.push(m);
  };
  receiver.on('media', collect);
  const commands: Array<{ action: string; sentMs: number; answeredMs: number }> = [];
  try {
    await sleep(1000);
    const started = await gateway.request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: receiver.url() });
    if (started.status !== 200) throw new Error(`startup answered ${started.status}`);
    const command = async (action: string, body: object = {}): Promise<void> => {
      const sentMs = now();
      const reply = await gateway.request('POST', `/rest-api/push/${action}`, { mediaSessionId: started.body.mediaSessionId, ...body });
      if (reply.status !== 200) throw new Error(`${action} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      commands.push({ action, sentMs, answeredMs: now() });
    };
    await sleep(1500);
    for (let i = 0; i < plan.audioRuns; i++) {
      await command('mute');
      await sleep(700 + ((i * 131) % 300));
      await command('sound_on', { soundFile: 'chime.wav' });
      await sleep(1300);
      await command('unmute');
      await sleep(700 + ((i * 173) % 300));
    }
    await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId });
  } finally {
    receiver.off('media', collect);
    await publisher.stop();
  }
  const frames = await levelsOfFrames(messages, join(WORK, 'audio-commands.flv'));
  const heard = (db: number): boolean => db > -50;
  const latencies: Record<string, number[]> = { mute: [], sound_on: [], unmute: [] };
  for (const c of commands) {
    const latency = changeLatency(frames, c.sentMs, c.answeredMs, c.action === 'mute' ? (db) => !heard(db) : heard);
    if (latency === undefined) throw new Error(`${c.action} at ${c.sentMs} never showed in the output`);
    latencies[c.action]!.push(latency);
  }
  details.audioCommands = Object.fromEntries(Object.entries(latencies).map(([k, v]) => [k, v.map(round)]));
  for (const [action, values] of Object.entries(latencies)) {
    report(`${action} reply -> change at RTMP server, median`, median(values) / 1000, 's');
    report(`${action} reply -> change at RTMP server, max`, Math.max(...values) / 1000, 's', { max: 0.5 });
  }
}

async function sdkStartup(gateway: GatewayProcess, receiver: RtmpReceiver): Promise<void> {
  console.log(`\nStartup from the SDK's publish() with rtmpUrl, headless Chromium (${plan.sdkRuns} runs)`);
  const browser = await TestBrowser.launch();
  const firsts: number[] = [];
  try {
    const page = browser.page;
    await page.goto(`${gateway.baseUrl}/sdk/gateway.js`);
    // The camera is opened once, before timing starts: publish() is measured, not getUserMedia().
    await page.evaluate(`(async () => {
      const sdk = await import('/sdk/gateway.js');
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
      const session = sdk.createSession({ urlServer: location.origin });
      await new Promise((resolve, reject) => session.on('ESTABLISHED', resolve).on('FAILED', (e) => reject(new Error(e.info))));
      window.bench = { session, media };
    })()`);
    for (let run = 0; run < plan.sdkRuns; run++) {
      const name = `sdk${run}`;
      const first = firstVideo(receiver, `rtmp_${name}`);
      const done = ended(receiver, `rtmp_${name}`);
      const t0 = (await page.evaluate(`(() => {
        const stream = window.bench.session.createStream({ name: '${name}', mediaStream: window.bench.media, rtmpUrl: '${receiver.url()}', rtmpTransponderFullUrl: false });
        window.bench.stream = stream;
        const t0 = performance.timeOrigin + performance.now();
        stream.publish();
        return t0;
      })()`)) as number;
      firsts.push((await first).arrivalMs - t0);
      await page.evaluate('window.bench.stream.stop()');
      await done;
    }
  } finally {
    await browser.close();
  }
  details.startupSdk = { firstFrameMs: firsts.map(round) };
  report('SDK publish() -> first video frame at RTMP server, median', median(firsts) / 1000, 's', { max: 1.0 });
  report('SDK publish() -> first video frame at RTMP server, p95', percentile(firsts, 95) / 1000, 's', { max: 1.0 });
}

/**
 * One push to the RTMP receiver for `plan.pushSeconds`: added latency per video frame, and the CPU
 * and memory of the gateway and of the push's ffmpeg.
 *
 * A frame's latency is its arrival at the RTMP server minus the moment the synthetic publisher
 * sent it over loopback (its arrival at the gateway, give or take the UDP hop). The first frame out
 * is the keyframe the gateway had cached when the push started; later frames follow by their RTMP
 * timestamps. For passthrough, every matched frame is also compared byte for byte with the frame sent.
 */
async function push(gateway: GatewayProcess, fixture: Fixture, receiver: RtmpReceiver, mode: 'passthrough' | 'transcode'): Promise<void> {
  console.log(`\nOne ${mode} push, 1280x720 at ${fixture.fps} fps, ~2.5 Mb/s (${plan.pushSeconds} s)`);
  const name = `push-${mode}`;
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
  const messages: RtmpMediaMessage[] = [];
  const collect = (m: RtmpMediaMessage): void => {
    if (m.kind === 'video' && !m.sequenceHeader && m.publish.streamName === `rtmp_${name}`) messages.push(m);
  };
  receiver.on('media', collect);
  try {
    // Start mid-GOP, so the cached keyframe is unambiguous.
    await sleep(2500);
    const gop = fixture.video.findIndex((unit, i) => i > 0 && unit.key);
    await waitFor('mid-GOP', () => {
      const sinceKey = publisher.frames.length - 1 - publisher.frames.findLastIndex((f) => f.key);
      return sinceKey >= gop / 4 && sinceKey <= (gop * 3) / 4;
    }, 5000, 5);
    const startedAt = now();
    const anchor = publisher.frames.findLastIndex((f) => f.key);
    const request = mode === 'transcode' ? { height: 720 } : {};
    const reply = await gateway.request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: receiver.url(), ...request });
    if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    await sleep(2000);
    const ffmpeg = await gateway.ffmpegPids();
    if (ffmpeg.length !== 1) throw new Error(`expected one ffmpeg, found ${ffmpeg.length}`);
    const window = new CpuWindow([gateway.pid, ffmpeg[0]!]);
    await sleep(plan.pushSeconds * 1000);
    const cpu = window.end();
    const rss = { gateway: rssMb(gateway.pid), ffmpeg: rssMb(ffmpeg[0]!) };
    await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: reply.body.mediaSessionId });

    const first = messages[0];
    if (!first) throw new Error('no video arrived');
    const latencies: number[] = [];
    let compared = 0;
    let identical = 0;
    for (const message of messages) {
      const index = anchor + Math.round(((message.timestamp - first.timestamp) * fixture.fps) / 1000);
      const sent = publisher.frames[index];
      if (!sent || sent.sentAt < startedAt + 1000) continue;
      latencies.push(message.arrivalMs - sent.sentAt);
      if (mode === 'passthrough') {
        compared++;
        const expected = fixture.video[sent.unit]!.nals.at(-1)!;
        if (flvNals(message.data).at(-1)?.equals(expected)) identical++;
      }
    }
    if (mode === 'passthrough' && identical < compared * 0.99) {
      throw new Error(`frame matching failed: ${identical} of ${compared} frames identical to the ones sent`);
    }
    const gatewayCpu = cpu.percent.get(gateway.pid)!;
    const ffmpegCpu = cpu.percent.get(ffmpeg[0]!)!;
    details[`push_${mode}`] = { frames: latencies.length, matchedIdentical: mode === 'passthrough' ? `${identical}/${compared}` : 'n/a', cpu: { gatewayCpu, ffmpegCpu }, rss };
    report(`${mode}: added latency, median`, median(latencies), 'ms', mode === 'passthrough' ? { max: 50 } : undefined);
    report(`${mode}: added latency, p95`, percentile(latencies, 95), 'ms');
    report(`${mode}: gateway CPU`, gatewayCpu, '% of a core');
    report(`${mode}: ffmpeg CPU`, ffmpegCpu, '% of a core');
    report(`${mode}: gateway + ffmpeg CPU`, gatewayCpu + ffmpegCpu, '% of a core', mode === 'passthrough' ? { max: 6 } : undefined);
    report(`${mode}: gateway RSS`, rss.gateway, 'MB');
    report(`${mode}: ffmpeg RSS`, rss.ffmpeg, 'MB');
  } finally {
    receiver.off('media', collect);
    await publisher.stop();
  }
}

interface StepResult {
  pushes: number;
  running: number;
  framesExpected: number;
  framesLost: number;
  lossPercent: number;
  worstPushLossPercent: number;
  gatewayCpu: number;
  ffmpegCpuEach: number;
  nginxCpu: number;
  publishersCpu: number;
  machineCpu: number;
  gatewayRssMb: number;
  /** Where frames are missing in each push's recording: "<time> +<gap>". */
  gaps: Record<string, string[]>;
}

/** Runs `count` synthetic publishers each pushed to nginx-rtmp, and counts frames lost there. */
async function capacityStep(gateway: GatewayProcess, fixture: Fixture, nginx: NginxRtmp, count: number): Promise<StepResult> {
  const names = Array.from({ length: count }, (_, i) => `cap${count}-${i}`);
  const publishers: SyntheticPublisher[] = [];
  try {
    for (const name of names) publishers.push(await SyntheticPublisher.publish(fixture, gateway.baseUrl, name));
    await sleep(1000);
    for (const name of names) {
      const reply = await gateway.request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
      if (reply.status !== 200) throw new Error(`startup of ${name} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    }
    await sleep(2000);
    const ffmpeg = await gateway.ffmpegPids();
    const window = new CpuWindow([gateway.pid, nginx.pid!, process.pid, ...ffmpeg]);
    await sleep(plan.capacitySeconds * 1000);
    const cpu = window.end();
    const gatewayRssMb = rssMb(gateway.pid);
    const listed = (await gateway.request('POST', '/rest-api/push/find_all')).body as { state: string }[];
    const running = listed.filter((t) => t.state === 'running').length;
    for (const publisher of publishers.splice(0)) await publisher.stop();
    await waitFor('every push to end', async () => (await gateway.ffmpegPids()).length === 0, 30_000, 100);

    let expected = 0;
    let lost = 0;
    let worst = 0;
    const gaps: Record<string, string[]> = {};
    for (const name of names) {
      const file = nginx.recording(`rtmp_${name}`);
      const video = (await probe(file).catch(() => ({ video: [] }))).video.map((p) => Number(p.pts_time));
      const span = video.length > 1 ? video.at(-1)! - video[0]! : 0;
      // Frames that should be there: the push's whole span at the fixture's rate, at least the window.
      const due = Math.max(Math.round(span * fixture.fps) + 1, plan.capacitySeconds * fixture.fps);
      const missing = Math.max(0, due - video.length);
      expected += due;
      lost += missing;
      worst = Math.max(worst, missing / due);
      const holes = video.flatMap((t, i) => (i > 0 && t - video[i - 1]! > 1.5 / fixture.fps ? [`${video[i - 1]!.toFixed(3)} s +${(t - video[i - 1]!).toFixed(3)} s`] : []));
      if (holes.length) gaps[name] = holes;
      rmSync(file, { force: true });
    }
    const each = (pids: number[]): number => pids.reduce((sum, pid) => sum + cpu.percent.get(pid)!, 0) / Math.max(1, pids.length);
    return {
      pushes: count,
      running,
      framesExpected: expected,
      framesLost: lost,
      lossPercent: round((lost / expected) * 100),
      worstPushLossPercent: round(worst * 100),
      gatewayCpu: round(cpu.percent.get(gateway.pid)!),
      ffmpegCpuEach: round(each(ffmpeg)),
      nginxCpu: round(cpu.percent.get(nginx.pid!)!),
      publishersCpu: round(cpu.percent.get(process.pid)!),
      machineCpu: round(cpu.machinePercent),
      gatewayRssMb: round(gatewayRssMb),
      gaps,
    };
  } finally {
    for (const publisher of publishers) await publisher.stop();
  }
}

async function capacity(gateway: GatewayProcess, fixture: Fixture, nginx: NginxRtmp): Promise<void> {
  console.log(`\nCapacity: concurrent passthrough pushes to nginx-rtmp, ${plan.capacitySeconds} s a step, < ${MAX_LOSS * 100} % video frames lost`);
  const steps: StepResult[] = [];
  let sustained = 0;
  for (const count of plan.capacitySteps) {
    const step = await capacityStep(gateway, fixture, nginx, count);
    steps.push(step);
    const ok = step.running === count && step.lossPercent < MAX_LOSS * 100;
    console.log(
      `  ${count} pushes: ${step.running} running, ${step.framesLost}/${step.framesExpected} frames lost (${step.lossPercent} %, worst push ${step.worstPushLossPercent} %); ` +
        `CPU % of a core: gateway ${step.gatewayCpu}, ffmpeg ${step.ffmpegCpuEach} each, nginx ${step.nginxCpu}, publishers ${step.publishersCpu}; machine ${step.machineCpu} % busy -> ${ok ? 'sustained' : 'FAILED'}`,
    );
    if (!ok) break;
    sustained = count;
  }
  details.capacity = steps;
  // The cost of one more push, once the gateway's fixed costs are shared: at the first step and
  // at the largest one sustained.
  const sustainedSteps = steps.filter((s) => s.pushes <= sustained);
  for (const step of new Set([sustainedSteps[0], sustainedSteps.at(-1)])) {
    if (!step) continue;
    report(`gateway + ffmpeg CPU per push at ${step.pushes} pushes`, step.gatewayCpu / step.pushes + step.ffmpegCpuEach, '% of a core', { max: 6 });
  }
  report(`concurrent passthrough pushes sustained on ${cpus().length} cores`, sustained, 'pushes', { min: quick ? 0 : 32 });
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const fixture = loadFixture(join(WORK, 'fixture'));
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
    ffmpeg: execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0],
  };
  console.log(`Benchmark (${quick ? 'quick' : 'full'}) on ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}, ${machine.ffmpeg}`);
  const gateway = await GatewayProcess.start(
    join(WORK, 'gateway.log'),
    { GATEWAY_LOG_LEVEL: args['log-level']! },
    args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(WORK, 'profiles')}`] : process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [],
  );
  const receiver = await RtmpReceiver.start();
  let nginx: NginxRtmp | undefined;
  try {
    if (sections.has('startup')) await startup(gateway, fixture, receiver);
    if (sections.has('sdk')) await sdkStartup(gateway, receiver);
    if (sections.has('latency')) {
      await push(gateway, fixture, receiver, 'passthrough');
      await push(gateway, fixture, receiver, 'transcode');
    }
    if (sections.has('audio')) await audioCommands(gateway, fixture, receiver);
    if (sections.has('resilience')) {
      console.log('\nResilience: destination restarts, 10 s network cuts, reconnect cycles');
      details.restartMs = await destinationRestart(gateway, fixture, report, plan.restartDownMs);
      details.networkCutMs = await networkCut(gateway, fixture, report, plan.cutRuns);
      await reconnectCycles(join(WORK, 'gateway-cycles.log'), fixture, report, plan.reconnectCycles);
    }
    if (sections.has('fanout')) {
      nginx ??= await NginxRtmp.start();
      details.fanoutCpu = await fanout(gateway, fixture, nginx, report, plan.pushSeconds);
    }
    if (sections.has('capacity')) {
      nginx ??= await NginxRtmp.start();
      await capacity(gateway, fixture, nginx);
    }
  } finally {
    await receiver.close();
    await nginx?.stop();
    await gateway.stop();
    await stopAllProcesses();
  }
  figures.printTable();
  const out = resolve(args.out!);
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), mode: quick ? 'quick' : 'full', machine, figures: figures.all, details }, null, 2) + '\n');
  console.log(`\nwritten to ${out}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping every process the benchmark started`);
    void stopAllProcesses().finally(() => process.exit(130));
  });
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    console.error(error);
    await stopAllProcesses();
    process.exit(1);
  },
);
