/**
 * One thread of the load generator (load-generator.ts): the synthetic publishers it is given,
 * their SRTP made and sent here, with its own event-loop delay and send backlog measured for the
 * window it is asked about.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import type { Fixture } from '../kit/fixture.js';
import { now } from '../kit/processes.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import type { FromThread, ThreadReport, ToThread } from './load-generator.js';

const port = parentPort!;
const shared = workerData as { fixture: Fixture };
// Buffers arrive as plain Uint8Arrays: viewed as Buffers again, without a copy.
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const fixture: Fixture = {
  ...shared.fixture,
  video: shared.fixture.video.map((unit) => ({ key: unit.key, nals: unit.nals.map(asBuffer) })),
  audio: shared.fixture.audio.map(asBuffer),
};

const publishers = new Map<string, SyntheticPublisher>();
/** Offers sent to the main thread for a peer's signalling, by request: their answers come back. */
const exchanges = new Map<number, { resolve: (sdp: string) => void; reject: (error: Error) => void }>();
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
/** The most frames any publisher was behind its schedule, sampled every 100 ms since the window began. */
let backlog = 0;
const BACKLOG_SAMPLE_MS = 100;
setInterval(() => {
  const time = now();
  for (const publisher of publishers.values()) backlog = Math.max(backlog, behind(publisher, time));
}, BACKLOG_SAMPLE_MS).unref();

/** Video frames due by `time` that `publisher` had not sent yet. */
function behind(publisher: SyntheticPublisher, time: number): number {
  const first = publisher.frames[0];
  if (!first) return 0;
  const due = Math.floor(((time - first.dueAt) * fixture.fps) / 1000) + 1;
  return Math.max(0, due - publisher.frames.length);
}

/** How late each frame due in [from, to) was sent (ms), over every publisher of the thread. */
function lateness(from: number, to: number): number[] {
  const late: number[] = [];
  for (const publisher of publishers.values()) {
    for (let i = publisher.frames.length - 1; i >= 0; i--) {
      const frame = publisher.frames[i]!;
      if (frame.dueAt < from) break;
      if (frame.dueAt < to) late.push(Math.max(0, frame.sentAt - frame.dueAt));
    }
  }
  return late;
}

async function handle(message: ToThread): Promise<unknown> {
  switch (message.op) {
    case 'publish': {
      const exchange = message.exchange
        ? (offer: string) =>
            new Promise<string>((resolve, reject) => {
              exchanges.set(message.id, { resolve, reject });
              port.postMessage({ op: 'offer', id: message.id, sdp: offer } satisfies FromThread);
            })
        : undefined;
      const publisher = await SyntheticPublisher.publish(fixture, message.baseUrl, message.name, {
        localAddress: message.localAddress,
        exchange,
      });
      publishers.set(message.name, publisher);
      return undefined;
    }
    case 'answer': {
      const waiting = exchanges.get(message.id);
      exchanges.delete(message.id);
      if (message.error !== undefined) waiting?.reject(new Error(message.error));
      else waiting?.resolve(message.sdp!);
      return undefined;
    }
    case 'stop': {
      const publisher = publishers.get(message.name);
      publishers.delete(message.name);
      await publisher?.stop();
      return undefined;
    }
    case 'window':
      delay.reset();
      backlog = 0;
      return undefined;
    case 'report': {
      let framesSent = 0;
      let sendsLost = 0;
      for (const publisher of publishers.values()) {
        framesSent += publisher.frames.length;
        sendsLost += publisher.sendsLost;
      }
      const report: ThreadReport = {
        late: lateness(message.from, message.to),
        publishers: publishers.size,
        framesSent,
        sendsLost,
        loopDelayP99Ms: delay.count ? delay.percentile(99) / 1e6 : 0,
        backlogFrames: backlog,
      };
      return report;
    }
  }
}

port.on('message', (message: ToThread) => {
  if (message.op === 'answer') {
    void handle(message);
    return;
  }
  handle(message).then(
    (value) => port.postMessage({ op: 'done', id: message.id, value } satisfies FromThread),
    (error: unknown) =>
      port.postMessage({ op: 'failed', id: message.id, error: (error as Error).message } satisfies FromThread),
  );
});
