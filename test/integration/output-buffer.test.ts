import { monitorEventLoopDelay } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import type { SentFrame, SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { median } from '../../kit/stats.js';
import type { TestGateway } from '../helpers/gateway.js';
import { now, pidsMatching, sleep, waitFor } from '../../kit/processes.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../../kit/rtmp-receiver.js';
import { findPush, PUSH_FFMPEG, keyframeCached } from '../helpers/pushes.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// Output buffering (rtmp_out_buffer_*) with real components: a werift publisher over WHIP whose
// packets arrive in bursts (it stalls, then sends what fell due at once, as after a network
// hiccup), the gateway, and an RTMP server noting when each frame arrived. Each frame that
// arrived is matched to the frame the publisher sent by its bytes (H.264 is passed through).

const BUFFER = {
  rtmp_out_buffer_enabled: true,
  rtmp_out_buffer_start_size: 600,
  rtmp_out_buffer_initial_size: 1200,
  rtmp_out_buffer_polling_time: 20,
  rtmp_out_buffer_max_bufferings_allowed: -1,
};

interface Arrival {
  frame: SentFrame;
  arrivalMs: number;
  timestamp: number;
}

/**
 * A buffered push of a publisher to an RTMP server; every video frame that arrives, matched to the
 * one sent when passed through.
 */
async function bufferedPush(
  t: Test,
  name: string,
  request: object = {},
): Promise<{
  gw: TestGateway;
  publisher: SyntheticPublisher;
  arrivals: Arrival[];
  unmatched: () => number;
  videoArrivals: number[];
}> {
  const receiver = await RtmpReceiver.start();
  t.teardown(() => receiver.close());
  const { gw, publisher } = await syntheticPublish(t, BUFFER, name);
  const messages: RtmpMediaMessage[] = [];
  const videoArrivals: number[] = [];
  receiver.on('media', (m) => {
    if (m.kind !== 'video' || m.sequenceHeader) return;
    videoArrivals.push(m.arrivalMs);
    if (!('height' in request)) messages.push(m);
  });
  await keyframeCached(gw, name);
  const res = await gw.post('/rest-api/push/startup', { streamName: name, rtmpUrl: receiver.url(), ...request });
  t.equal(res.status, 200, JSON.stringify(res.body));
  const arrivals: Arrival[] = [];
  let unmatched = 0;
  const match = (): void => {
    for (const m of messages.splice(0)) {
      const frame = publisher.frameOf(m.data, m.arrivalMs);
      if (frame) arrivals.push({ frame, arrivalMs: m.arrivalMs, timestamp: m.timestamp });
      else unmatched++;
    }
  };
  const timer = setInterval(match, 200);
  t.teardown(() => clearInterval(timer));
  await waitFor('frames at the RTMP server', () => videoArrivals.length > 0, 5000);
  return { gw, publisher, arrivals, unmatched: () => (match(), unmatched), videoArrivals };
}

const range = (values: number[]): number => Math.max(...values) - Math.min(...values);

t.test('bursty input leaves evenly, no later than the configured most', async (t) => {
  const { gw, publisher, arrivals, unmatched } = await bufferedPush(t, 'bursty');
  await sleep(1500);
  // The gateway, its publisher and the RTMP server noting arrivals share this process's event loop:
  // how late the loop ran is measured over the window, and allowed for in the output's evenness.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  // Every second, nothing for 400 ms, then a burst: what the publisher's network did.
  const from = now();
  for (let i = 0; i < 6; i++) {
    publisher.stall(400);
    await sleep(1000);
  }
  const to = now();
  await sleep(1500);
  loop.disable();
  const loopLateMs = loop.max / 1e6;
  t.equal(unmatched(), 0, 'every frame that arrived is one the publisher sent, byte for byte');

  const window = arrivals.filter((a) => a.frame.dueAt >= from + 500 && a.frame.dueAt <= to);
  t.ok(window.length >= 120, `${window.length} frames sent during the bursts arrived`);
  const sentLate = window.map((a) => a.frame.sentAt - a.frame.dueAt);
  const arrivedLate = window.map((a) => a.arrivalMs - a.frame.dueAt);
  t.ok(
    range(sentLate) >= 300,
    `the input was bursty: sent ${Math.round(Math.min(...sentLate))}–${Math.round(Math.max(...sentLate))} ms after due`,
  );
  t.ok(
    range(arrivedLate) <= 120 + loopLateMs,
    `the output was even: arrived ${Math.round(Math.min(...arrivedLate))}–${Math.round(Math.max(...arrivedLate))} ms after due (120 ms, and the event loop ran up to ${Math.round(loopLateMs)} ms late)`,
  );
  t.ok(
    Math.max(...arrivedLate) <= 1200 + 100,
    'no frame later than rtmp_out_buffer_initial_size (+ a polling period and the hops)',
  );
  t.ok(
    median(arrivedLate) >= 400,
    `held about rtmp_out_buffer_start_size: median ${Math.round(median(arrivedLate))} ms after due`,
  );

  const listed = await findPush(gw, 'bursty');
  t.match(listed, { state: 'running', outputBuffer: { state: 'playing', bufferings: 0 } }, 'the buffer never ran dry');
  t.ok(
    listed.outputBuffer.levelMs > 300 && listed.outputBuffer.levelMs <= 1200,
    `level ${listed.outputBuffer.levelMs} ms`,
  );
});

t.test(
  'output that stops for longer than what is buffered (ffmpeg paused): the buffer runs dry, fills again, media flows on',
  async (t) => {
    // Transcoded, so all media comes from ffmpeg; a paused ffmpeg makes none (it is replaced only after 5 s).
    const { gw, videoArrivals } = await bufferedPush(t, 'gappy', { height: 240 });
    await sleep(1500);
    const [pid] = await pidsMatching(PUSH_FFMPEG);
    t.ok(pid, "the push's ffmpeg");
    process.kill(pid!, 'SIGSTOP');
    try {
      await waitFor(
        'the buffer to run dry',
        async () => (await findPush(gw, 'gappy')).outputBuffer.state === 'buffering',
        3000,
      );
    } finally {
      process.kill(pid!, 'SIGCONT');
    }
    const resumed = now();
    await waitFor(
      'the buffer to fill and play again',
      async () => (await findPush(gw, 'gappy')).outputBuffer.state === 'playing',
      3000,
    );
    await sleep(1000);
    const listed = await findPush(gw, 'gappy');
    t.match(
      listed,
      { state: 'running', outputBuffer: { state: 'playing', bufferings: 1 }, counters: { drops: 0 } },
      'one buffering, no drop',
    );
    t.ok(videoArrivals.filter((at) => at > resumed).length >= 15, 'video flows again');
  },
);
