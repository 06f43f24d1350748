import t from 'tap';
import pino from 'pino';
import { TypedEmitter } from '../../src/events.js';
import type { IngestSession, IngestSessionEvents, IngestTrack } from '../../src/ingest/engine.js';
import type { MediaPacket } from '../../src/media/rtp.js';
import { Publisher, type MediaSink } from '../../src/publishers/publisher.js';
import type { CachedPacket } from '../../src/publishers/start-cache.js';

// One publisher's packets reach every sink; a sink that throws is logged once and hurts no other.

class AudioTrack implements IngestTrack {
  readonly kind = 'audio' as const;
  readonly clockRate = 48000;
  listener: ((packet: MediaPacket) => void) | undefined;
  onPacket(listener: (packet: MediaPacket) => void): () => void {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
  requestKeyframe(): void {}
}

class FakeSession extends TypedEmitter<IngestSessionEvents> implements IngestSession {
  readonly id = 'fake';
  readonly answer = '';
  readonly videoCodec = undefined;
  readonly hasAudio = true;
  constructor(readonly tracks: IngestTrack[]) {
    super();
  }
  async close(): Promise<void> {}
}

class CountingSink implements MediaSink {
  readonly sequences: number[] = [];
  constructor(private readonly throws = false) {}
  write(packet: CachedPacket): void {
    if (this.throws) throw new Error('broken sink');
    this.sequences.push(packet.sequenceNumber);
  }
}

t.test('a throwing sink does not stop the others, and is logged once', async (t) => {
  const track = new AudioTrack();
  const logged: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  const publisher = new Publisher('cam', new FakeSession([track]), { keyframeIntervalMs: 2000, log });
  t.teardown(() => publisher.close());
  const before = new CountingSink();
  const broken = new CountingSink(true);
  const after = new CountingSink();
  for (const sink of [before, broken, after]) publisher.attach(sink, false);
  for (let i = 0; i < 50; i++) track.listener!({ sequenceNumber: i, timestamp: i * 960, marker: false, payload: Buffer.from([1, 2, 3]) });
  const all = Array.from({ length: 50 }, (_, i) => i);
  t.same(before.sequences, all, 'the sink before the broken one got every packet');
  t.same(after.sequences, all, 'the sink after the broken one got every packet');
  t.equal(publisher.counters.sinkErrors, 50, 'every failure is counted');
  t.equal(logged.filter((l) => /a media sink threw/.test(l)).length, 1, 'and logged once');
});
