import { now, sleep, waitFor } from '../kit/processes.js';
import type { RtmpMediaMessage, RtmpReceiver } from '../kit/rtmp-receiver.js';
import { median, percentile } from '../kit/stats.js';
import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { flvNals, SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { CpuWindow, rssMb } from './proc.js';
import type { Bench } from './report.js';

const NAL_SEI = 6;
/** ATSC's user identifier in an A/53 SEI: "GA94". */
const A53 = Buffer.from('GA94');

/**
 * One push to the RTMP receiver for `bench.plan.pushSeconds`: added latency per video frame, and the CPU
 * and memory of the gateway and of the push's ffmpeg.
 *
 * A frame's latency is its arrival at the RTMP server minus the moment the synthetic publisher
 * sent it over loopback (its arrival at the gateway, give or take the UDP hop). The first frame out
 * is the keyframe the gateway had cached when the push started; later frames follow by their RTMP
 * timestamps. For passthrough, every matched frame is also compared byte for byte with the frame sent.
 */
/**
 * What each mode asks of the push: H.264 passed through, transcoded at its size, made a vertical
 * 720x1280 picture, or passed through with a caption every second (CEA-608 in an SEI of each frame);
 * or, of an AV1 stream, AV1 passed through over Enhanced RTMP.
 */
const REQUESTS = {
  passthrough: {},
  transcode: { height: 720 },
  vertical: { aspect: '9:16' },
  captions: {},
  av1: { videoCodec: 'passthrough' },
} as const;
/** Each mode's gateway + ffmpeg CPU target, % of a core: a 720p30 transcode 0.3 of a core, a 720x1280 one 0.35. */
const CPU_TARGETS = { passthrough: 5, transcode: 30, vertical: 35, captions: 5, av1: 5 } as const;
const CAPTION_EVERY_MS = 1000;

/**
 * The captions push beside the passthrough push of the same run: the latency it adds (held to 5 ms,
 * within what one run differs from the next) and its CPU (shown; the captions' own cost, measured
 * in-process by `captionCost`, is what is held to 0.2 % of a core, below this figure's spread).
 */
export function captionsBeside(bench: Bench, passthrough: PushFigures, captions: PushFigures): void {
  bench.report(
    'captions beside passthrough: added latency, median difference',
    captions.medianMs - passthrough.medianMs,
    'ms',
    { max: 5 },
  );
  bench.report(
    'captions beside passthrough: CPU difference (gateway + ffmpeg)',
    captions.cpu - passthrough.cpu,
    '% of a core',
  );
}

/**
 * The AV1 passthrough push beside the H.264 one of the same run, same picture, bitrate and sound:
 * its CPU and added latency as a share of H.264's (target: within 10 %).
 */
export function av1Beside(bench: Bench, passthrough: PushFigures, av1: PushFigures): void {
  bench.report('AV1 beside H.264 passthrough: CPU (gateway + ffmpeg), ratio', av1.cpu / passthrough.cpu, 'times', {
    max: 1.1,
  });
  bench.report(
    'AV1 beside H.264 passthrough: added latency, median, ratio',
    av1.medianMs / passthrough.medianMs,
    'times',
    {
      max: 1.1,
    },
  );
}

/** What one push measured: its added latency (median, ms) and the gateway's and ffmpeg's CPU (% of a core). */
export interface PushFigures {
  medianMs: number;
  cpu: number;
}

export async function push(
  bench: Bench,
  gateway: GatewayProcess,
  fixture: Fixture,
  receiver: RtmpReceiver,
  mode: keyof typeof REQUESTS,
): Promise<PushFigures> {
  const what =
    mode === 'vertical' ? ', made 720x1280 (9:16, the centre)' : mode === 'av1' ? ', AV1 over Enhanced RTMP' : '';
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
    const reply = await gateway.request('POST', '/rest-api/push/startup', {
      streamName: name,
      rtmpUrl: receiver.url(),
      ...REQUESTS[mode],
    });
    if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    await sleep(2000);
    let captions = 0;
    const caption = (): void => {
      captions++;
      void gateway.request('POST', '/rest-api/stream/caption', {
        streamName: name,
        text: `Caption number ${captions}, sent a second after the one before.`,
      });
    };
    const captionsFrom = now();
    if (mode === 'captions') caption();
    const captioning = mode === 'captions' ? setInterval(caption, CAPTION_EVERY_MS) : undefined;
    const ffmpeg = await gateway.ffmpegPids();
    if (ffmpeg.length !== 1) throw new Error(`expected one ffmpeg, found ${ffmpeg.length}`);
    const own = await gateway.ownPids();
    const window = new CpuWindow([...own, ffmpeg[0]!]);
    await sleep(bench.plan.pushSeconds * 1000);
    const cpu = window.end();
    clearInterval(captioning);
    const rss = { gateway: rssMb(gateway.pid), ffmpeg: rssMb(ffmpeg[0]!) };
    await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: reply.body.mediaSessionId });

    const first = messages[0];
    if (!first) throw new Error('no video arrived');
    const latencies: number[] = [];
    let compared = 0;
    let identical = 0;
    let captionFrames = 0;
    let withCaptions = 0;
    for (const message of messages) {
      const index = anchor + Math.round(((message.timestamp - first.timestamp) * fixture.fps) / 1000);
      const sent = publisher.frames[index];
      if (!sent || sent.sentAt < startedAt + 1000) continue;
      latencies.push(message.arrivalMs - sent.sentAt);
      if (mode === 'av1') {
        // The Enhanced RTMP body: its 5 bytes of header, then the temporal unit as it was sent.
        compared++;
        if (message.data.subarray(5).equals(fixture.video[sent.unit]!.nals[0]!)) identical++;
      } else if (mode === 'passthrough' || mode === 'captions') {
        compared++;
        const nals = flvNals(message.data);
        const expected = fixture.video[sent.unit]!.nals.at(-1)!;
        if (nals.at(-1)?.equals(expected)) identical++;
        // From the first caption on (its reply takes a moment), every frame carries caption data.
        if (mode === 'captions' && sent.sentAt >= captionsFrom + 500) {
          captionFrames++;
          if (nals.some((nal) => (nal[0]! & 0x1f) === NAL_SEI && nal.includes(A53))) withCaptions++;
        }
      }
    }
    const passedThrough = mode === 'passthrough' || mode === 'captions' || mode === 'av1';
    if (passedThrough && identical < compared * 0.99) {
      throw new Error(`frame matching failed: ${identical} of ${compared} frames identical to the ones sent`);
    }
    if (mode === 'captions' && withCaptions < captionFrames * 0.99)
      throw new Error(`captions: ${withCaptions} of ${captionFrames} frames carried caption data`);
    // The gateway is Node and, on mediasoup, its media worker processes.
    const gatewayCpu = cpu.of(own);
    const mediaWorkerCpu = cpu.of(own.slice(1));
    const ffmpegCpu = cpu.percent.get(ffmpeg[0]!)!;
    bench.details[`push_${mode}`] = {
      frames: latencies.length,
      matchedIdentical: compared ? `${identical}/${compared}` : 'n/a',
      ...(mode === 'captions' ? { captions, framesWithCaptions: `${withCaptions}/${captionFrames}` } : {}),
      cpu: { gatewayCpu, mediaWorkerCpu, ffmpegCpu },
      rss,
    };
    bench.report(`${mode}: added latency, median`, median(latencies), 'ms', passedThrough ? { max: 50 } : undefined);
    bench.report(
      `${mode}: added latency, p95`,
      percentile(latencies, 95),
      'ms',
      passedThrough ? undefined : { max: 60 },
    );
    bench.report(`${mode}: gateway CPU (Node and media workers)`, gatewayCpu, '% of a core');
    bench.report(`${mode}: of which media workers`, mediaWorkerCpu, '% of a core');
    bench.report(`${mode}: ffmpeg CPU`, ffmpegCpu, '% of a core');
    bench.report(`${mode}: gateway + ffmpeg CPU`, gatewayCpu + ffmpegCpu, '% of a core', { max: CPU_TARGETS[mode] });
    bench.report(`${mode}: gateway RSS`, rss.gateway, 'MB');
    bench.report(`${mode}: ffmpeg RSS`, rss.ffmpeg, 'MB');
    return { medianMs: median(latencies), cpu: gatewayCpu + ffmpegCpu };
  } finally {
    receiver.off('media', collect);
    await publisher.stop();
  }
}
