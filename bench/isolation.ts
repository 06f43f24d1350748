import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { now, sleep, startProcess, stopProcess, waitFor } from '../kit/processes.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../kit/rtmp-receiver.js';
import { median, percentile } from '../kit/stats.js';
import { flvNals, SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { ThrottleProxy, type ThrottleMode } from '../kit/throttle-proxy.js';
import { round, type Bench } from './report.js';

/** B's frames may not stop for longer than this in any window (ms). */
const MAX_GAP_MS = 100;
/** Nor arrive later than in the calm window by more than this, at the 99th percentile (ms). */
const MAX_ADDED_P99_MS = 10;

interface Window {
  name: string;
  mode: ThrottleMode;
  startAt: number;
  endAt: number;
}

/**
 * One push cannot hold back another: one stream pushed to A and to B, with one core kept busy by
 * a process spinning. A's server is stopped (nothing read or acknowledged), killed (connections
 * reset, refused), read at 50 KB/s, then back (A reconnects), `seconds` each, after a calm
 * window. In every window, B must lose no frame, its frames may not stop for over 100 ms, and their
 * latency (the publisher's send → arrival at B's server) p99 may not exceed the calm window's
 * median by over 10 ms.
 */
export async function isolation(bench: Bench, gateway: GatewayProcess, fixture: Fixture): Promise<void> {
  const seconds = bench.quick ? 5 : 20;
  console.log(
    `\nIsolation: one stream pushed to A and B, one core kept busy; A's server stopped, killed, slow (50 KB/s), then back, ${seconds} s each`,
  );
  const name = 'isolation';
  const receiverA = await RtmpReceiver.start();
  const proxy = await ThrottleProxy.start({ host: '127.0.0.1', port: receiverA.port });
  const receiverB = await RtmpReceiver.start();
  const hog = startProcess(process.execPath, ['-e', 'for (;;) {}']);
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
  const arrivals: RtmpMediaMessage[] = [];
  receiverB.on('media', (m) => {
    if (m.kind === 'video' && !m.sequenceHeader) arrivals.push(m);
  });
  const ids: string[] = [];
  const windows: Window[] = [];
  try {
    await waitFor(
      'a keyframe of the stream',
      async () => (await gateway.request('POST', '/rest-api/stream/find', { name })).body?.[0]?.video,
      15_000,
    );
    for (const url of [`${proxy.url()}/a`, `${receiverB.url()}/b`]) {
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName: name,
        rtmpUrl: url,
        rtmpTransponderFullUrl: true,
      });
      if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      ids.push(reply.body.mediaSessionId);
    }
    await waitFor('frames at B', () => arrivals.length > 30, 15_000);
    const plan: [string, ThrottleMode][] = [
      ['calm', 'pass'],
      ['A stopped', 'stopped'],
      ['A killed', 'killed'],
      ['A read at 50 KB/s', 'slow'],
      ['A back (reconnects)', 'pass'],
    ];
    for (const [windowName, mode] of plan) {
      await proxy.set(mode);
      const startAt = now();
      await sleep(seconds * 1000);
      windows.push({ name: windowName, mode, startAt, endAt: now() });
    }
    const a = await gateway.push(ids[0]!);
    console.log(
      `  A at the end: ${a?.state}, ${a?.counters.reconnects} reconnects, ${a?.counters.framesDropped} frames dropped`,
    );
  } finally {
    for (const mediaSessionId of ids) await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId });
    await publisher.stop();
    await stopProcess(hog);
    await proxy.close();
    await receiverA.close();
    await receiverB.close();
  }

  // B's first frame is the frame sent last before it with the same bytes; the others follow by timestamp.
  const first = arrivals[0]!;
  const lastNal = flvNals(first.data).at(-1);
  const unit = fixture.video.findIndex((u) => lastNal !== undefined && u.nals.at(-1)!.equals(lastNal));
  const anchor = publisher.frames.findLast((f) => f.unit === unit && f.sentAt <= first.arrivalMs)?.index;
  if (anchor === undefined) throw new Error("B's first frame matches no frame sent");
  const byIndex = new Map<number, RtmpMediaMessage>();
  for (const m of arrivals) byIndex.set(anchor + Math.round(((m.timestamp - first.timestamp) * fixture.fps) / 1000), m);
  const results = windows.map((w) => {
    const sent = publisher.frames.filter((f) => f.sentAt >= w.startAt && f.sentAt < w.endAt - 1000);
    const got = sent
      .map((f) => ({ f, m: byIndex.get(f.index) }))
      .filter((x): x is { f: (typeof sent)[number]; m: RtmpMediaMessage } => x.m !== undefined);
    const latencies = got.map(({ f, m }) => m.arrivalMs - f.sentAt).sort((x, y) => x - y);
    const times = arrivals.filter((m) => m.arrivalMs >= w.startAt && m.arrivalMs < w.endAt).map((m) => m.arrivalMs);
    const gap = times.reduce((worst, t, i) => (i ? Math.max(worst, t - times[i - 1]!) : worst), 0);
    return {
      window: w.name,
      sent: sent.length,
      lost: sent.length - got.length,
      maxGapMs: round(gap),
      latencyMedianMs: round(median(latencies)),
      latencyP99Ms: round(percentile(latencies, 99)),
    };
  });
  const calm = results[0]!.latencyMedianMs;
  for (const r of results) {
    console.log(
      `  ${r.window}: B lost ${r.lost} of ${r.sent} frames, longest gap ${r.maxGapMs} ms, latency median ${r.latencyMedianMs} ms, p99 ${r.latencyP99Ms} ms`,
    );
  }
  bench.details.isolation = results;
  bench.report(
    'isolation: frames B lost while A was in trouble',
    results.reduce((sum, r) => sum + r.lost, 0),
    'frames',
    { max: 0 },
  );
  bench.report("isolation: B's longest gap, worst window", Math.max(...results.map((r) => r.maxGapMs)), 'ms', {
    max: MAX_GAP_MS,
  });
  bench.report(
    "isolation: B's latency p99 above the calm median, worst window",
    Math.max(...results.map((r) => r.latencyP99Ms)) - calm,
    'ms',
    { max: MAX_ADDED_P99_MS },
  );
}
