import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { sleep } from '../kit/processes.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { cpuWithReaped, reapedSeconds } from './proc.js';
import type { Bench } from './report.js';

const STREAMS = 16;
const INTERVAL_S = 5;
/**
 * What a stream's thumbnails may cost (% of a core): its keyframe's decode every 5 s (~14 ms for the
 * fixture's 720p on the reference machine: 0.3 %) and its share of an ffmpeg's start per worker thread
 * and round (~0.14 s each), with room for a busy machine.
 */
const PER_STREAM_MAX = 1;

/** The CPU (% of a core) of a gateway with 16 streams publishing, its spawner and media workers with what they reaped. */
async function sixteenStreams(
  bench: Bench,
  fixture: Fixture,
  intervalS: number,
  seconds: number,
): Promise<{ cpu: number; ffmpegCpu: number; files: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-thumbnails-'));
  const gateway = await GatewayProcess.start(join(bench.work, `gateway-thumbnails-${intervalS}.log`), {
    GATEWAY_THUMBNAIL_INTERVAL_S: String(intervalS),
    GATEWAY_THUMBNAIL_DIR: dir,
    GATEWAY_THUMBNAIL_NAMING: 'numbered',
  });
  const publishers: SyntheticPublisher[] = [];
  try {
    for (let i = 0; i < STREAMS; i++)
      publishers.push(await SyntheticPublisher.publish(fixture, gateway.baseUrl, `thumbnails-${i}`, { audio: false }));
    await sleep(INTERVAL_S * 1000); // every stream with a keyframe, the first round past
    const pids = await gateway.ownPids();
    const spawners = await gateway.spawnerPids();
    const before = pids.map(cpuWithReaped);
    const reapedBefore = spawners.map(reapedSeconds);
    const filesBefore = (await readdir(dir)).length;
    await sleep(seconds * 1000);
    const used = pids.map(cpuWithReaped).reduce((sum, cpu, i) => sum + cpu - before[i]!, 0);
    const reaped = spawners.map(reapedSeconds).reduce((sum, cpu, i) => sum + cpu - reapedBefore[i]!, 0);
    return {
      cpu: (used / seconds) * 100,
      ffmpegCpu: (reaped / seconds) * 100,
      files: (await readdir(dir)).length - filesBefore,
    };
  } finally {
    await Promise.all(publishers.map((p) => p.stop()));
    await gateway.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What thumbnails cost: 16 streams (the benchmark's 720p30 fixture, video only) published into a
 * gateway that takes none, then into one that takes a thumbnail of each every 5 s, the gateway's
 * CPU measured over the same window in both (with the snapshots' ffmpegs, through what its
 * spawner reaped). The difference is the thumbnails'; the thumbnails written are counted.
 */
export async function thumbnailCost(bench: Bench, fixture: Fixture): Promise<void> {
  const seconds = bench.quick ? 15 : 60;
  console.log(`\nThumbnails: ${STREAMS} streams, none against one of each every ${INTERVAL_S} s (${seconds} s each)`);
  const off = await sixteenStreams(bench, fixture, 0, seconds);
  const on = await sixteenStreams(bench, fixture, INTERVAL_S, seconds);
  bench.details.thumbnails = { off, on, seconds };
  bench.report(`thumbnails: ${STREAMS} streams, gateway CPU with none`, off.cpu, '% of a core');
  bench.report(
    `thumbnails: one of each of ${STREAMS} streams every ${INTERVAL_S} s (above none)`,
    on.cpu - off.cpu,
    '% of a core',
  );
  // Two gateways' difference moves by a few % of a core between runs (the publishers' share); the
  // thumbnails' ffmpegs, reaped by the spawner, are the cost itself, measured within one run.
  bench.report('thumbnails: their ffmpegs, per stream', on.ffmpegCpu / STREAMS, '% of a core', {
    max: PER_STREAM_MAX,
  });
  bench.report('thumbnails: written in the window', on.files, 'files', {
    min: Math.floor((seconds / INTERVAL_S - 1) * STREAMS),
  });
}
