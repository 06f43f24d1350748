import pino from 'pino';
import { TypedEmitter } from '../../src/core/events.js';
import type { IngestSession, IngestSessionEvents, IngestTrack } from '../../src/ingest/engine.js';
import type { MediaKind, VideoCodec } from '../../src/media/codecs.js';
import { Publisher } from '../../src/publishers/publisher.js';
import { packetizeH264 } from '../../kit/h264-packetizer.js';
import type { RtpSink } from '../../src/media/sinks.js';

/** SPS and PPS of a 1280x720 constrained-baseline stream (as x264 and Chromium's OpenH264 make them). */
export const SPS_720P = Buffer.from('Z0LAH9oBQBbsBEAAAAMAQAAADyPGDKg=', 'base64');
export const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80]);

/** A NAL unit of `type` with `size` bytes, its body filled with `fill`. */
export function nal(type: number, size: number, fill = 0): Buffer {
  const buffer = Buffer.alloc(size, fill);
  buffer[0] = 0x60 | type;
  return buffer;
}

/** A track of an ingest session whose packets the test sends. */
export class FakeTrack implements IngestTrack {
  keyframeRequests = 0;
  packetsSent = 0;
  #input: RtpSink | undefined;
  #sequence = 0;

  constructor(
    readonly kind: MediaKind,
    readonly clockRate = kind === 'video' ? 90000 : 48000,
  ) {}

  deliverTo(input: RtpSink): () => void {
    this.#input = input;
    return () => (this.#input = undefined);
  }

  requestKeyframe(): void {
    this.keyframeRequests++;
  }

  /** Sends one packet; the sequence number goes on from the last unless given. */
  send(payload: Buffer, timestamp: number, marker = true, sequenceNumber = this.#sequence): void {
    this.#sequence = (sequenceNumber + 1) & 0xffff;
    this.packetsSent++;
    this.#input?.packet({ sequenceNumber: sequenceNumber & 0xffff, timestamp, marker, payload, captureMs: 0 });
  }

  /** Sends an H.264 access unit as Chromium packetizes it, the marker on its last packet. */
  sendFrame(nals: Buffer[], timestamp: number): void {
    const payloads = packetizeH264(nals);
    payloads.forEach((payload, i) => this.send(payload, timestamp, i === payloads.length - 1));
  }
}

class FakeSession extends TypedEmitter<IngestSessionEvents> implements IngestSession {
  readonly id = 'fake';
  readonly answer = '';
  readonly hasAudio: boolean;
  constructor(
    readonly tracks: IngestTrack[],
    readonly videoCodec: VideoCodec | undefined = tracks.some((t) => t.kind === 'video') ? 'H264' : undefined,
  ) {
    super();
    this.hasAudio = tracks.some((t) => t.kind === 'audio');
  }
  async close(): Promise<void> {}
}

/** A publisher of fake tracks (no network): its packets are what the test sends. */
export function fakePublisher(name: string, tracks: FakeTrack[], keyframeIntervalMs = 2000): Publisher {
  // Packets are fed all at once: each track's first is its start.
  const log = pino({ level: 'silent' });
  return new Publisher(name, new FakeSession(tracks), { keyframeIntervalMs, firstPacketsSettleMs: 0, log });
}

/** A video publisher whose camera has sent a keyframe and two frames since: a sink can start from its cache. */
export function cachedPublisher(t: { teardown(fn: () => unknown): void }): {
  publisher: Publisher;
  camera: FakeCamera;
} {
  const track = new FakeTrack('video');
  const publisher = fakePublisher('cam', [track]);
  t.teardown(() => publisher.close());
  const camera = new FakeCamera(track);
  camera.warmUp();
  camera.frame();
  return { publisher, camera };
}

/** A 720p H.264 camera at 30 fps sent through `track`: `frame(key)` sends the next frame. */
export class FakeCamera {
  #frame = 0;
  constructor(readonly track: FakeTrack) {}

  frame(key = false): void {
    const nals = key ? [SPS_720P, PPS, nal(5, 3000, this.#frame & 0xff)] : [nal(1, 800, this.#frame & 0xff)];
    this.track.sendFrame(nals, this.#frame * 3000);
    this.#frame++;
  }

  /** A keyframe after a frame, and one more frame: a publisher has a keyframe to start a sink from. */
  warmUp(): void {
    this.frame();
    this.frame(true);
    this.frame();
  }
}
