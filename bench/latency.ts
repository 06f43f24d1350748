import { join } from 'node:path';
import { now, sleep, waitFor } from '../kit/processes.js';
import type { RtmpMediaMessage, RtmpReceiver } from '../kit/rtmp-receiver.js';
import { mean, median, percentile } from '../kit/stats.js';
import type { Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { flvNals, SyntheticPublisher, type SentFrame } from '../kit/synthetic-publisher.js';
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
 * its CPU as a share of H.264's (target: within 10 %). Their latencies are compared by `av1AtOnce`.
 */
export function av1Beside(bench: Bench, passthrough: PushFigures, av1: PushFigures): void {
  bench.report('AV1 beside H.264 passthrough: CPU (gateway + ffmpeg), ratio', av1.cpu / passthrough.cpu, 'times', {
    max: 1.1,
  });
}

/**
 * AV1 and H.264 passed through at once, to compare the latency each adds (target: AV1's within 10 %
 * of H.264's). Their publishers send on the same ticks (each frame of one with the same frame of the
 * other), to a gateway of its own with one media thread, so both pushes' frames wait for the same
 * merged writes (the RTMP writer's `MERGED_WRITE_MS`, one timer per thread):
 * how long a frame waits for one depends on where the frames fall between them, which differs from
 * one run to the next (a median of 15 or of 40 ms for the same build), so pushes measured one after
 * the other cannot be compared. What differs here is the codec's path alone; also told frame by frame.
 * The target is held on the means over the frames both delivered: a frame that is the first media held
 * since the last merged write waits the whole 40 ms, one that comes while a write is pending waits for
 * the rest of it, so latencies gather at two places, and a median can fall on either with no change in
 * the path.
 */
export async function av1AtOnce(
  bench: Bench,
  fixtures: { h264: Fixture; av1: Fixture },
  receiver: RtmpReceiver,
): Promise<void> {
  console.log(
    `\nAV1 and H.264 passed through at once, sent on the same ticks, one media thread (${bench.plan.pushSeconds} s)`,
  );
  const gateway = await GatewayProcess.start(join(bench.work, 'gateway-at-once.log'), { GATEWAY_WORKERS: '1' });
  // Keyframes come where the fixtures have them: both publishers stay at the same place in their GOPs.
  const options = { ignoreKeyframeRequests: true };
  let h264: SyntheticPublisher | undefined;
  let av1: SyntheticPublisher | undefined;
  const streams = ['rtmp_at-once-h264', 'rtmp_at-once-av1'];
  const messages = streams.map(() => [] as RtmpMediaMessage[]);
  const collect = (m: RtmpMediaMessage): void => {
    const stream = streams.indexOf(m.publish.streamName);
    if (m.kind === 'video' && !m.sequenceHeader && stream >= 0) messages[stream]!.push(m);
  };
  receiver.on('media', collect);
  try {
    h264 = await SyntheticPublisher.publish(fixtures.h264, gateway.baseUrl, 'at-once-h264', options);
    av1 = await SyntheticPublisher.publish(fixtures.av1, gateway.baseUrl, 'at-once-av1', { ...options, clockOf: h264 });
    await midGop(h264, fixtures.h264);
    const startedAt = now();
    const anchors = [h264, av1].map((p) => p.frames.findLastIndex((f) => f.key));
    const replies = await Promise.all(
      [h264, av1].map((p) =>
        gateway.request('POST', '/rest-api/push/startup', {
          streamName: p.name,
          rtmpUrl: receiver.url(),
          videoCodec: 'passthrough',
        }),
      ),
    );
    for (const reply of replies)
      if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    await sleep((bench.plan.pushSeconds + 2) * 1000);
    for (const reply of replies)
      await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: reply.body.mediaSessionId });

    const figures = [h264, av1].map((publisher, i) => {
      const fixture = i ? fixtures.av1 : fixtures.h264;
      const matched = matchFrames(messages[i]!, publisher, fixture.fps, anchors[i]!, startedAt + 2000);
      checkMatched(matched.filter(({ message, sent }) => passedAsSent(message, fixture, sent)).length, matched.length);
      return new Map(matched.map(({ message, sent }) => [sent.index, message.arrivalMs - sent.sentAt]));
    });
    // The frames both pushes delivered: each one's latency, H.264's then AV1's.
    const paired = [...figures[0]!].flatMap(([index, ms]) => {
      const other = figures[1]!.get(index);
      return other === undefined ? [] : [[ms, other] as const];
    });
    const [h264Ms, av1Ms] = [0, 1].map((i) => paired.map((pair) => pair[i]!)) as [number[], number[]];
    const differences = paired.map(([h, a]) => a - h);
    bench.details.av1AtOnce = {
      frames: figures.map((f) => f.size),
      paired: paired.length,
      // How the latencies spread (frames per 5 ms from 0): the merged writes make them bimodal.
      histogram: [h264Ms, av1Ms].map((ms) => histogram(ms, 5)),
    };
    bench.report('at once: H.264 passthrough added latency, mean', mean(h264Ms), 'ms');
    bench.report('at once: AV1 passthrough added latency, mean', mean(av1Ms), 'ms');
    bench.report('at once: AV1 beside H.264, added latency, mean, ratio', mean(av1Ms) / mean(h264Ms), 'times', {
      max: 1.1,
    });
    bench.report('at once: H.264 passthrough added latency, median', median(h264Ms), 'ms');
    bench.report('at once: AV1 passthrough added latency, median', median(av1Ms), 'ms');
    bench.report('at once: AV1 minus H.264, the same frame, median', median(differences), 'ms');
    bench.report('at once: AV1 minus H.264, the same frame, p95', percentile(differences, 95), 'ms');
  } finally {
    receiver.off('media', collect);
    await Promise.all([h264?.stop(), av1?.stop()]);
    await gateway.stop();
  }
}

/** How many of `values` fall in each `width`-wide bin from 0. */
function histogram(values: number[], width: number): number[] {
  const bins: number[] = [];
  for (const value of values) {
    const bin = Math.max(0, Math.floor(value / width));
    while (bins.length <= bin) bins.push(0);
    bins[bin]!++;
  }
  return bins;
}

/**
 * Waits until the publisher is mid-GOP, after 2.5 s of sending: a push started then begins with a
 * keyframe the gateway cached, unambiguously the publisher's last.
 */
async function midGop(publisher: SyntheticPublisher, fixture: Fixture): Promise<void> {
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
}

/** What one push measured: its added latency (median, ms) and the gateway's and ffmpeg's CPU (% of a core). */
export interface PushFigures {
  medianMs: number;
  cpu: number;
}

/**
 * Each video message of a push matched to the frame the publisher sent: the first message is the
 * keyframe the gateway had cached when the push started (the publisher's last before `anchor`, a
 * position in its `frames`), later ones follow by their RTMP timestamps. Frames sent before `fromMs`
 * are left out (the push's start).
 */
function matchFrames(
  messages: RtmpMediaMessage[],
  publisher: SyntheticPublisher,
  fps: number,
  anchor: number,
  fromMs: number,
): { message: RtmpMediaMessage; sent: SentFrame }[] {
  const first = messages[0];
  if (!first) throw new Error(`no video of ${publisher.name} arrived`);
  const matched: { message: RtmpMediaMessage; sent: SentFrame }[] = [];
  for (const message of messages) {
    const sent = publisher.frames[anchor + Math.round(((message.timestamp - first.timestamp) * fps) / 1000)];
    if (sent && sent.sentAt >= fromMs) matched.push({ message, sent });
  }
  return matched;
}

/**
 * Whether a message carries the frame as it was sent: H.264's picture (the last NAL unit: captions
 * may add an SEI before it), or the AV1 temporal unit after the Enhanced RTMP body's 5 bytes of header.
 */
function passedAsSent(message: RtmpMediaMessage, fixture: Fixture, sent: SentFrame): boolean {
  const unit = fixture.video[sent.unit]!;
  return fixture.codec === 'AV1'
    ? message.data.subarray(5).equals(unit.nals[0]!)
    : flvNals(message.data).at(-1)?.equals(unit.nals.at(-1)!) === true;
}

function checkMatched(identical: number, compared: number): void {
  if (identical < compared * 0.99)
    throw new Error(`frame matching failed: ${identical} of ${compared} frames identical to the ones sent`);
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
    await midGop(publisher, fixture);
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

    const passedThrough = mode === 'passthrough' || mode === 'captions' || mode === 'av1';
    const latencies: number[] = [];
    let compared = 0;
    let identical = 0;
    let captionFrames = 0;
    let withCaptions = 0;
    for (const { message, sent } of matchFrames(messages, publisher, fixture.fps, anchor, startedAt + 1000)) {
      latencies.push(message.arrivalMs - sent.sentAt);
      if (!passedThrough) continue;
      compared++;
      if (passedAsSent(message, fixture, sent)) identical++;
      // From the first caption on (its reply takes a moment), every frame carries caption data.
      if (mode === 'captions' && sent.sentAt >= captionsFrom + 500) {
        captionFrames++;
        if (flvNals(message.data).some((nal) => (nal[0]! & 0x1f) === NAL_SEI && nal.includes(A53))) withCaptions++;
      }
    }
    checkMatched(identical, compared);
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
