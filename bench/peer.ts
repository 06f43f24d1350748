import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Fixture } from '../kit/fixture.js';
import { TestNetwork } from '../kit/netns.js';
import { now, sleep, startProcess, stopProcess, waitFor } from '../kit/processes.js';
import type { RtmpReceiver } from '../kit/rtmp-receiver.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import { median } from '../kit/stats.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { framesLost, MAX_LOSS } from './capacity.js';
import { Janus, type JanusPublisher } from './janus.js';
import { generatorSaid, LoadGenerator, Ramp, type LoadPublisher } from './load-generator.js';
import { cpuOver, udpCounters } from './proc.js';
import { round, type Bench } from './report.js';
import { firstVideo } from './startup.js';
import { loadConfig } from '../src/config/load.js';
import type { GatewayConfig } from '../src/config/schema.js';
import { DEFAULT_CONFIG_FILE } from '../src/core/paths.js';

/** The configuration the benchmark's gateway reads (its file and the environment): the peer encodes audio as it does. */
let gatewayConfig: GatewayConfig | undefined;
const readGatewayConfig = (): GatewayConfig =>
  (gatewayConfig ??= loadConfig(process.env.GATEWAY_CONFIG ?? DEFAULT_CONFIG_FILE));

/** The synthetic publisher's payload types (its offer's first codec of each kind). */
const VIDEO_PT = 96;
const AUDIO_PT = 111;
/** RTP ports the forwarding ffmpeg processes listen on (even: RTCP takes the next). */
const FIRST_PORT = 31000;

/** One publisher in Janus's VideoRoom, forwarded to an ffmpeg that pushes it to an RTMP server. */
interface PeerPush {
  publisher: SyntheticPublisher | LoadPublisher;
  handle: JanusPublisher;
  ffmpeg?: ChildProcess;
}

/**
 * The peer beside us in the same run: Janus (VideoRoom, `rtp_forward`) with an ffmpeg per push
 * (plain RTP in, H.264 copied, Opus to AAC with the gateway's own settings, RTMP out), fed by the
 * same synthetic publishers, pushing to the same RTMP servers. Startup is from the moment the push
 * is asked for (ffmpeg started, its ports open, the forward asked and a keyframe requested until
 * one comes, which the VideoRoom does not do by itself) to the first video frame at the server.
 */
export async function peer(bench: Bench, fixture: Fixture, receiver: RtmpReceiver, nginx: NginxRtmp): Promise<void> {
  console.log('\nPeer: Janus VideoRoom -> rtp_forward -> ffmpeg -> RTMP, the same publishers and servers');
  if (!(await TestNetwork.available())) {
    console.log('  skipped: Janus runs in a network namespace of its own, which needs root and iproute2');
    return;
  }
  const janus = await Janus.start(join(bench.work, 'janus'));
  let port = FIRST_PORT;
  const pushes: PeerPush[] = [];
  // The ramp's publishers come from the load generator's threads, as the gateway's ramp's do.
  const generator = new LoadGenerator(fixture);
  /** A publisher in the room, not yet forwarded: from this thread, or from the load generator's. */
  const enter = async (name: string, load?: LoadGenerator): Promise<PeerPush> => {
    const handle = await janus.publisherHandle();
    try {
      const options = { localAddress: janus.network.hostAddress, exchange: (offer: string) => handle.publish(offer) };
      const publisher = load
        ? await load.publish('', name, options)
        : await SyntheticPublisher.publish(fixture, '', name, options);
      const push = { publisher, handle };
      pushes.push(push);
      return push;
    } catch (error) {
      await handle.close();
      throw error;
    }
  };
  const forward = async (push: PeerPush, rtmpUrl: string): Promise<void> => {
    const videoPort = port;
    port += 4;
    push.ffmpeg = await startForwarder(join(bench.work, 'janus'), janus.network.hostAddress, videoPort, rtmpUrl);
    await push.handle.forward(janus.network.hostAddress, videoPort, videoPort + 2, VIDEO_PT, AUDIO_PT);
    await push.handle.requestKeyframe();
  };
  const end = async (push: PeerPush): Promise<void> => {
    pushes.splice(pushes.indexOf(push), 1);
    try {
      if (push.ffmpeg) await stopProcess(push.ffmpeg);
      await push.publisher.stop();
    } finally {
      await push.handle.close();
    }
  };
  try {
    // Startup, stream already publishing.
    const firsts: number[] = [];
    for (let run = 0; run < bench.plan.startupRuns; run++) {
      const name = `janus-start-${run}`;
      const push = await enter(name);
      await sleep(2500);
      const first = firstVideo(receiver, name, 20_000);
      const t0 = now();
      await forward(push, `${receiver.url()}/${name}`);
      let arrived = false;
      void first.then(
        () => (arrived = true),
        () => undefined,
      );
      while (!arrived && now() - t0 < 20_000) {
        await push.handle.requestKeyframe().catch(() => undefined);
        await sleep(300);
      }
      firsts.push((await first).arrivalMs - t0);
      await end(push);
    }
    bench.details.peerStartupMs = firsts.map(round);
    bench.report('peer (Janus): push asked -> first video frame at RTMP server, median', median(firsts) / 1000, 's', {
      runs: firsts.map((ms) => ms / 1000),
    });

    // Cost per push and capacity, at the capacity section's steps.
    const steps: Record<string, unknown>[] = [];
    let sustained = 0;
    const ramp = new Ramp(bench.plan.capacitySteps);
    for (let count = ramp.next(); count !== undefined; count = ramp.next()) {
      const names = Array.from({ length: count }, (_, i) => `janus${count}-${i}`);
      const step: PeerPush[] = [];
      try {
        for (const name of names) step.push(await enter(name, generator));
        for (const [i, push] of step.entries()) await forward(push, `${nginx.url()}/${names[i]}`);
        const keyframes = setInterval(
          () => step.forEach((p) => void p.handle.requestKeyframe().catch(() => undefined)),
          1000,
        );
        await sleep(2000);
        clearInterval(keyframes);
        const ffmpeg = step.map((p) => p.ffmpeg!.pid!);
        await generator.open();
        // Where datagrams were dropped for full receive buffers: in Janus's namespace (the publishers'
        // RTP), or in this one (the forwarded RTP at each ffmpeg's socket).
        const udpBefore = { janus: udpCounters(janus.pid), here: udpCounters() };
        const windowFrom = now();
        const measured = await cpuOver([janus.pid, process.pid, ...ffmpeg], bench.plan.capacitySeconds);
        const cpu = measured.whole;
        const kept = await generator.window(windowFrom, now(), step.length);
        const udpDropped = {
          janus: udpCounters(janus.pid).receiveBufferErrors - udpBefore.janus.receiveBufferErrors,
          forwarders: udpCounters().receiveBufferErrors - udpBefore.here.receiveBufferErrors,
        };
        for (const push of step) await end(push);
        if (!kept.fed) {
          // Judged as the gateway's step is: the publishers were not fed, so the step says nothing of Janus.
          const back = ramp.notFed(count);
          console.log(
            `  ${count} pushes: ${generatorSaid(kept)}: it could not feed its publishers, ` +
              `so the step says nothing of Janus; ${back ? `${back} pushes next` : 'the ramp ends here'}`,
          );
          continue;
        }
        ramp.fed(count);
        const lost = await framesLost(nginx, names, fixture, bench.plan.capacitySeconds);
        const result = {
          pushes: count,
          generator: kept,
          janusCpu: round(cpu.percent.get(janus.pid)!),
          ffmpegCpuEach: round(cpu.of(ffmpeg) / count),
          perPush: round(cpu.percent.get(janus.pid)! / count + cpu.of(ffmpeg) / count),
          perPushParts: measured.parts.map((part) => round(part.of([janus.pid, ...ffmpeg]) / count)),
          lossPercent: round((lost.lost / lost.expected) * 100),
          machineCpu: round(cpu.machinePercent),
          udpDropped,
          gaps: lost.gaps,
        };
        steps.push(result);
        const ok = result.lossPercent < MAX_LOSS * 100;
        console.log(
          `  ${count} pushes: ${lost.lost}/${lost.expected} frames lost (${result.lossPercent} %); CPU % of a core: Janus ${result.janusCpu}, ffmpeg ${result.ffmpegCpuEach} each, ${result.perPush} per push; machine ${result.machineCpu} % busy; ${generatorSaid(kept)}; ` +
            'UDP datagrams dropped for full receive buffers: ' +
            `${udpDropped.janus} in Janus's namespace, ${udpDropped.forwarders} at the forwarding ffmpeg; ` +
            `${Object.values(lost.gaps).flat().length} gaps in ${Object.keys(lost.gaps).length} recordings ` +
            `-> ${ok ? 'sustained' : 'FAILED'}`,
        );
        if (!ok) break;
        sustained = count;
      } finally {
        for (const push of step) if (pushes.includes(push)) await end(push);
      }
    }
    bench.details.peerCapacity = steps;
    const at16 = steps.find((s) => s.pushes === 16) ?? steps[0];
    if (at16)
      bench.report(
        `peer (Janus): Janus + ffmpeg CPU per push at ${at16.pushes as number} pushes`,
        at16.perPush as number,
        '% of a core',
        { runs: at16.perPushParts as number[], runsAre: 'thirds of its window' },
      );
    bench.report('peer (Janus): concurrent pushes sustained', sustained, 'pushes');
    bench.details.peerSustained = sustained;
    sideBySide(bench);
  } finally {
    for (const push of [...pushes]) await end(push).catch(() => undefined);
    await generator.close();
    await janus.stop();
  }
}

/** Starts an ffmpeg that reads a forwarded publisher (video on `videoPort`, audio two above) and pushes it. */
async function startForwarder(dir: string, address: string, videoPort: number, rtmpUrl: string): Promise<ChildProcess> {
  const sdp = join(dir, `forward-${videoPort}.sdp`);
  await writeFile(
    sdp,
    [
      'v=0',
      `o=- 0 0 IN IP4 ${address}`,
      's=janus',
      `c=IN IP4 ${address}`,
      't=0 0',
      `m=video ${videoPort} RTP/AVP ${VIDEO_PT}`,
      `a=rtpmap:${VIDEO_PT} H264/90000`,
      `a=fmtp:${VIDEO_PT} packetization-mode=1`,
      `m=audio ${videoPort + 2} RTP/AVP ${AUDIO_PT}`,
      `a=rtpmap:${AUDIO_PT} opus/48000/2`,
      '',
    ].join('\n'),
  );
  const audio = readGatewayConfig();
  const ffmpeg = startProcess('ffmpeg', [
    '-hide_banner',
    '-nostats',
    '-nostdin',
    '-loglevel',
    'error',
    // Probing ends once both streams' parameters are known (a keyframe is asked for at once); the
    // limit is above the 2 s GOP so that a lost request cannot leave ffmpeg without a picture size.
    // Opus decoded by libopus, as the gateway's ffmpeg does: on the fixture's tone, ffmpeg 5.1's own
    // decoder makes the AAC encoder after it cost about twice as much (2.4 s against 1.1 s of CPU
    // for 60 s), which would count against the peer a cost that is only a choice of decoder.
    '-protocol_whitelist',
    'file,udp,rtp',
    '-analyzeduration',
    '2500000',
    '-c:a',
    'libopus',
    '-i',
    sdp,
    '-map',
    '0:v:0',
    '-map',
    '0:a:0',
    '-c:v',
    'copy',
    '-c:a',
    'aac',
    // The gateway's own AAC settings.
    '-aac_coder',
    audio.audio_aac_coder,
    '-b:a',
    `${audio.audio_bitrate_kbps}k`,
    '-ar',
    String(audio.audio_sample_rate),
    '-ac',
    '2',
    '-f',
    'flv',
    rtmpUrl,
  ]);
  ffmpeg.stderr!.pipe(createWriteStream(join(dir, `forward-${videoPort}.log`)));
  await waitFor(
    `ffmpeg to listen on UDP ${videoPort} and ${videoPort + 2}`,
    () => {
      if (ffmpeg.exitCode !== null) throw new Error(`the forwarding ffmpeg exited with ${ffmpeg.exitCode}`);
      return udpBound(videoPort) && udpBound(videoPort + 2);
    },
    10_000,
    10,
  );
  return ffmpeg;
}

/** Whether a UDP socket of this namespace is bound to `port`. */
function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return readFileSync('/proc/net/udp', 'utf8').includes(hex);
}

/** The gateway's figures from this run beside Janus's. */
function sideBySide(bench: Bench): void {
  const ours =
    (bench.details.capacity as
      | {
          pushes: number;
          gatewayCpu: number;
          ffmpegCpuEach: number;
          perPushParts: number[];
          lossPercent: number;
          generator: { fed: boolean };
        }[]
      | undefined) ?? [];
  const theirs =
    (bench.details.peerCapacity as
      { pushes: number; perPush: number; perPushParts: number[]; lossPercent: number }[] | undefined) ?? [];
  if (!ours.length || !theirs.length) return;
  const spread = (parts: number[]): string => `${Math.min(...parts)}-${Math.max(...parts)}`;
  console.log(
    "\n  pushes | gateway: CPU per push (its window's thirds), frames lost | Janus: the same | gateway / Janus",
  );
  for (const step of ours) {
    const peerStep = theirs.find((s) => s.pushes === step.pushes);
    const perPush = round(step.gatewayCpu / step.pushes + step.ffmpegCpuEach);
    const oursSaid = step.generator.fed
      ? `${perPush} % (${spread(step.perPushParts)}), ${step.lossPercent} %`
      : 'not fed by the load generator';
    const peerSaid = peerStep
      ? `${peerStep.perPush} % (${spread(peerStep.perPushParts)}), ${peerStep.lossPercent} %`
      : '-';
    const ratio = step.generator.fed && peerStep ? ` | ${round(perPush / peerStep.perPush)} ×` : '';
    console.log(`  ${String(step.pushes).padStart(6)} | ${oursSaid} | ${peerSaid}${ratio}`);
  }
  // Against the peer, from this run alone, at every step both sustained: at most its CPU per push,
  // and three quarters of it at 16.
  for (const step of ours) {
    const peerStep = theirs.find((s) => s.pushes === step.pushes);
    const valid = step.generator.fed && step.lossPercent < MAX_LOSS * 100;
    if (!peerStep || !valid || peerStep.lossPercent >= MAX_LOSS * 100) continue;
    bench.report(
      `CPU per push at ${step.pushes} pushes, gateway / Janus + ffmpeg`,
      (step.gatewayCpu / step.pushes + step.ffmpegCpuEach) / peerStep.perPush,
      '×',
      { max: step.pushes === 16 ? 0.75 : 1 },
    );
  }
  const sustained = bench.details.sustained as number | undefined;
  const peerSustained = bench.details.peerSustained as number | undefined;
  if (sustained !== undefined && peerSustained)
    bench.report('pushes sustained, gateway / Janus + ffmpeg', sustained / peerSustained, '×');
  const startup = bench.details.startupRest as { firstFrameMs: number[] } | undefined;
  const peerStartup = bench.details.peerStartupMs as number[] | undefined;
  if (startup && peerStartup)
    console.log(
      `  startup to the first frame, median: gateway ${median(startup.firstFrameMs)} ms, Janus ${median(peerStartup)} ms`,
    );
}
