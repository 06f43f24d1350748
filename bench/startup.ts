import { TestBrowser } from '../kit/browser.js';
import { now, sleep } from '../kit/processes.js';
import type { RtmpMediaMessage, RtmpReceiver } from '../kit/rtmp-receiver.js';
import { median, percentile } from '../kit/stats.js';
import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { round, type Bench } from './report.js';

/** The next video frame (not a sequence header) the receiver gets for `streamName`. */
export function firstVideo(receiver: RtmpReceiver, streamName: string, timeoutMs = 10_000): Promise<RtmpMediaMessage> {
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

export async function restStartup(
  bench: Bench,
  gateway: GatewayProcess,
  fixture: Fixture,
  receiver: RtmpReceiver,
): Promise<void> {
  console.log(`\nStartup from /push/startup, stream already publishing (${bench.plan.startupRuns} runs)`);
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'startup');
  const replies: number[] = [];
  const firsts: number[] = [];
  try {
    await sleep(2500);
    for (let run = 0; run < bench.plan.startupRuns; run++) {
      const first = firstVideo(receiver, 'rtmp_startup');
      const done = ended(receiver, 'rtmp_startup');
      const t0 = now();
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName: 'startup',
        rtmpUrl: receiver.url(),
      });
      if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      replies.push(now() - t0);
      firsts.push((await first).arrivalMs - t0);
      await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: reply.body.mediaSessionId });
      await done;
      await sleep(150 + ((run * 97) % 400)); // lands each run at another point of the GOP
    }
  } finally {
    await publisher.stop();
  }
  bench.details.startupRest = { replyMs: replies.map(round), firstFrameMs: firsts.map(round) };
  bench.report('/push/startup -> 200, median', median(replies) / 1000, 's', { runs: replies.map((ms) => ms / 1000) });
  bench.report('/push/startup -> first video frame at RTMP server, median', median(firsts) / 1000, 's', {
    runs: firsts.map((ms) => ms / 1000),
  });
  bench.report('/push/startup -> first video frame at RTMP server, p95', percentile(firsts, 95) / 1000, 's', {
    max: 0.05,
  });
}

/**
 * Audio commands on a live push: from the reply to mute, unmute or sound_on (muted, the shipped
 * chime) to the first audio frame at the RTMP server that carries the change.
 */
export async function sdkStartup(bench: Bench, gateway: GatewayProcess, receiver: RtmpReceiver): Promise<void> {
  console.log(`\nStartup from the SDK's publish() with rtmpUrl, headless Chromium (${bench.plan.sdkRuns} runs)`);
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
    for (let run = 0; run < bench.plan.sdkRuns; run++) {
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
  bench.details.startupSdk = { firstFrameMs: firsts.map(round) };
  bench.report('SDK publish() -> first video frame at RTMP server, median', median(firsts) / 1000, 's', {
    max: 0.25,
    runs: firsts.map((ms) => ms / 1000),
  });
  bench.report('SDK publish() -> first video frame at RTMP server, p95', percentile(firsts, 95) / 1000, 's', {
    max: 1.0,
  });
}
