import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { waitFor } from '../kit/processes.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import { SrtListener } from '../kit/srt-listener.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { WhepViewer } from '../kit/whep-viewer.js';
import { gatewayCpu } from './proc.js';
import type { Bench } from './report.js';

/**
 * What each kind of output costs beside an RTMP push of the same stream: the CPU of the gateway
 * and every ffmpeg it runs with one RTMP push, then with an SRT push added (its own ffmpeg,
 * MPEG-TS over SRT to ffmpeg listening on loopback), then with a recording added (`record://`,
 * its own ffmpeg writing MP4 parts); and how long the SRT push's startup takes to answer (it
 * answers once the SRT session is up). The recording's files are deleted afterwards.
 */
export async function outputs(
  bench: Bench,
  gateway: GatewayProcess,
  fixture: Fixture,
  nginx: NginxRtmp,
): Promise<void> {
  const seconds = bench.plan.pushSeconds;
  console.log(`\nOutputs: one stream pushed over RTMP, then over SRT beside it, then recorded too (${seconds} s each)`);
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'outputs');
  const listener = await SrtListener.start('bench-passphrase-0001');
  const ids: string[] = [];
  const cpu = (): Promise<number> => gatewayCpu(gateway, seconds);
  const start = async (rtmpUrl: string): Promise<number> => {
    const startedAt = performance.now();
    const reply = await gateway.request('POST', '/rest-api/push/startup', {
      streamName: 'outputs',
      rtmpUrl,
      rtmpTransponderFullUrl: true,
    });
    if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    ids.push(reply.body.mediaSessionId);
    return performance.now() - startedAt;
  };
  try {
    await start(`${nginx.url()}/outputs-rtmp`);
    const rtmp = await cpu();
    // The same load measured again: how far two windows of it differ is the floor below which a difference is noise.
    const again = await cpu();
    const noiseFloor = Math.max(Math.abs(again - rtmp), 100 / (seconds * 100));
    const srtStartupMs = await start(listener.url('passphrase=bench-passphrase-0001&latency=120'));
    await waitFor('media at the SRT listener', async () => (await listener.received()) > 100_000, 20_000);
    const both = await cpu();
    const recordStartupMs = await start('record://');
    const all = await cpu();
    bench.report('outputs: CPU, gateway and its ffmpeg, 1 RTMP push', rtmp, '% of a core');
    bench.report('outputs: CPU, gateway and its ffmpeg, RTMP + SRT push', both, '% of a core');
    bench.report('outputs: CPU noise floor (two windows of 1 RTMP push)', noiseFloor, '% of a core');
    bench.report('outputs: CPU an SRT push adds', both - (rtmp + again) / 2, '% of a core', { noiseFloor });
    bench.report('outputs: CPU a recording adds', all - both, '% of a core', { noiseFloor });
    bench.report('outputs: SRT push /push/startup → 200 (session up)', srtStartupMs, 'ms');
    bench.report('outputs: recording /push/startup → 200 (first part open)', recordStartupMs, 'ms');
    // A WHEP viewer beside them: from a frame leaving the publisher to its first packet at the viewer.
    const viewer = await WhepViewer.watch(gateway.baseUrl, 'outputs');
    try {
      await waitFor('200 frames at the viewer', () => viewer.videoArrivals.size >= 200, 30_000);
      const delays = publisher.frames
        .map((f) => (viewer.videoArrivals.get(publisher.videoTimestamp(f.index)) ?? NaN) - f.sentAt)
        .filter((ms) => Number.isFinite(ms))
        .sort((a, b) => a - b);
      const at = (q: number): number => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]!;
      bench.report('outputs: WHEP viewer, frame sent → at the viewer, median', at(0.5), 'ms');
      bench.report('outputs: WHEP viewer, frame sent → at the viewer, p95', at(0.95), 'ms');
      bench.details.outputs = {
        rtmp,
        both,
        all,
        srtStartupMs,
        recordStartupMs,
        whepMedianMs: at(0.5),
        whepP95Ms: at(0.95),
        whepFrames: delays.length,
      };
    } finally {
      await viewer.close();
    }
  } finally {
    for (const mediaSessionId of ids) await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId });
    const recorded = await gateway.request('POST', '/rest-api/recording/find_all', { streamName: 'outputs' });
    for (const { fileName } of recorded.status === 200 ? (recorded.body as { fileName: string }[]) : [])
      await gateway.request('POST', '/rest-api/recording/delete', { fileName });
    await publisher.stop();
    await listener.close();
  }
}
