import { now, sleep, waitFor } from '../kit/processes.js';
import type { RtmpMediaMessage, RtmpReceiver } from '../kit/rtmp-receiver.js';
import { median, percentile } from '../kit/stats.js';
import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { flvNals, SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { CpuWindow, rssMb } from './proc.js';
import type { Bench } from './report.js';

/**
 * One push to the RTMP receiver for `bench.plan.pushSeconds`: added latency per video frame, and the CPU
 * and memory of the gateway and of the push's ffmpeg.
 *
 * A frame's latency is its arrival at the RTMP server minus the moment the synthetic publisher
 * sent it over loopback (its arrival at the gateway, give or take the UDP hop). The first frame out
 * is the keyframe the gateway had cached when the push started; later frames follow by their RTMP
 * timestamps. For passthrough, every matched frame is also compared byte for byte with the frame sent.
 */
/** What each mode asks of the push: H.264 passed through, transcoded at its size, or made a vertical 720x1280 picture. */
const REQUESTS = { passthrough: {}, transcode: { height: 720 }, vertical: { aspect: '9:16' } } as const;
/** Each mode's gateway + ffmpeg CPU target, % of a core: a 720p30 transcode 0.3 of a core, a 720x1280 one 0.35. */
const CPU_TARGETS = { passthrough: 5, transcode: 30, vertical: 35 } as const;

export async function push(bench: Bench, gateway: GatewayProcess, fixture: Fixture, receiver: RtmpReceiver, mode: keyof typeof REQUESTS): Promise<void> {
  const what = mode === 'vertical' ? ', made 720x1280 (9:16, the centre)' : '';
  console.log(`\nOne ${mode} push, 1280x720 at ${fixture.fps} fps, ~2.5 Mb/s${what} (${bench.plan.pushSeconds} s)`);
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
    await waitFor(
      'mid-GOP',
      () => {
        const sinceKey = publisher.frames.length - 1 - publisher.frames.findLastIndex((f) => f.key);
        return sinceKey >= gop / 4 && sinceKey <= (gop * 3) / 4;
      },
      5000,
      5,
    );
    const startedAt = now();
    const anchor = publisher.frames.findLastIndex((f) => f.key);
    const reply = await gateway.request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: receiver.url(), ...REQUESTS[mode] });
    if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    await sleep(2000);
    const ffmpeg = await gateway.ffmpegPids();
    if (ffmpeg.length !== 1) throw new Error(`expected one ffmpeg, found ${ffmpeg.length}`);
    const own = await gateway.ownPids();
    const window = new CpuWindow([...own, ffmpeg[0]!]);
    await sleep(bench.plan.pushSeconds * 1000);
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
    // The gateway is Node and, on mediasoup, its media worker processes.
    const gatewayCpu = cpu.of(own);
    const mediaWorkerCpu = cpu.of(own.slice(1));
    const ffmpegCpu = cpu.percent.get(ffmpeg[0]!)!;
    bench.details[`push_${mode}`] = {
      frames: latencies.length,
      matchedIdentical: mode === 'passthrough' ? `${identical}/${compared}` : 'n/a',
      cpu: { gatewayCpu, mediaWorkerCpu, ffmpegCpu },
      rss,
    };
    bench.report(`${mode}: added latency, median`, median(latencies), 'ms', mode === 'passthrough' ? { max: 50 } : undefined);
    bench.report(`${mode}: added latency, p95`, percentile(latencies, 95), 'ms', mode === 'passthrough' ? undefined : { max: 60 });
    bench.report(`${mode}: gateway CPU (Node and media workers)`, gatewayCpu, '% of a core');
    bench.report(`${mode}: of which media workers`, mediaWorkerCpu, '% of a core');
    bench.report(`${mode}: ffmpeg CPU`, ffmpegCpu, '% of a core');
    bench.report(`${mode}: gateway + ffmpeg CPU`, gatewayCpu + ffmpegCpu, '% of a core', { max: CPU_TARGETS[mode] });
    bench.report(`${mode}: gateway RSS`, rss.gateway, 'MB');
    bench.report(`${mode}: ffmpeg RSS`, rss.ffmpeg, 'MB');
  } finally {
    receiver.off('media', collect);
    await publisher.stop();
  }
}
