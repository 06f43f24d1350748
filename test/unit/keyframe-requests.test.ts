import t from 'tap';
import pino from 'pino';
import { TypedEmitter } from '../../src/events.js';
import type { IngestSession, IngestSessionEvents, IngestTrack } from '../../src/ingest/engine.js';
import type { MediaPacket } from '../../src/media/rtp.js';
import { Publisher } from '../../src/publishers/publisher.js';
import { sleep } from '../helpers/processes.js';

const FRAME_MS = 33;
const IDR = Buffer.from([0x65, 0x88, 0x84]);
const NON_IDR = Buffer.from([0x41, 0x9a, 0x02]);

/**
 * A camera at 30 fps that sends a keyframe only when asked, `answerMs` after the request (the
 * encoder's and the network's delay), and otherwise never: every keyframe in the stream is one the
 * publisher asked for.
 */
class AskedCamera implements IngestTrack {
  readonly kind = 'video' as const;
  readonly clockRate = 90000;
  readonly videoCodec = 'H264' as const;
  readonly keyframesAt: number[] = [];
  #listener: ((packet: MediaPacket) => void) | undefined;
  #sequence = 0;
  #frame = 0;
  #keyDueAt: number | undefined = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly answerMs: number) {}

  onPacket(listener: (packet: MediaPacket) => void): () => void {
    this.#listener = listener;
    return () => (this.#listener = undefined);
  }

  requestKeyframe(): void {
    this.#keyDueAt ??= this.#frame * FRAME_MS + this.answerMs;
  }

  start(): void {
    this.#timer = setInterval(() => {
      const captureMs = this.#frame * FRAME_MS;
      const key = this.#keyDueAt !== undefined && captureMs >= this.#keyDueAt;
      if (key) {
        this.#keyDueAt = undefined;
        this.keyframesAt.push(captureMs);
      }
      this.#listener?.({ sequenceNumber: this.#sequence++ & 0xffff, timestamp: this.#frame * FRAME_MS * 90, marker: true, payload: key ? IDR : NON_IDR });
      this.#frame++;
    }, FRAME_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

class FakeSession extends TypedEmitter<IngestSessionEvents> implements IngestSession {
  readonly id = 'fake';
  readonly answer = '';
  readonly videoCodec = 'H264' as const;
  readonly hasAudio = false;
  constructor(readonly tracks: IngestTrack[]) {
    super();
  }
  async close(): Promise<void> {}
}

function largestGap(times: number[]): number {
  let largest = 0;
  for (let i = 1; i < times.length; i++) largest = Math.max(largest, times[i]! - times[i - 1]!);
  return largest;
}

for (const answerMs of [0, 250]) {
  t.test(`keyframes stay within the interval when the sender answers in ${answerMs} ms`, async (t) => {
    const camera = new AskedCamera(answerMs);
    const publisher = new Publisher('cam', new FakeSession([camera]), { keyframeIntervalMs: 1000, log: pino({ level: 'silent' }) });
    t.teardown(async () => {
      camera.stop();
      await publisher.close();
    });
    camera.start();
    await sleep(5500);
    const after = camera.keyframesAt.filter((ms) => ms > 1000);
    t.comment(camera.keyframesAt.join(" "));
    t.ok(after.length >= 4, `${after.length} keyframes after the first second`);
    const gap = largestGap(after);
    t.ok(gap <= 1000, `largest gap ${gap} ms is within the 1000 ms interval`);
    t.ok(gap >= 500, `largest gap ${gap} ms: keyframes are not asked for much more often than needed`);
  });
}
