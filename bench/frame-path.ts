import type { Fixture } from '../kit/fixture.js';
import { packetizeH264 } from '../kit/h264-packetizer.js';
import { H264Depacketizer } from '../src/media/h264.js';
import { RtpReceiver } from '../src/media/rtp.js';
import { TagWriter } from '../src/pushes/tag-writer.js';
import { messageChunks } from '../src/rtmp/chunks.js';
import type { Bench } from './report.js';
import type { VideoFrame } from '../src/media/sinks.js';

/** Seconds of the fixture's video each run takes through the path (the fixture looped). */
const SECONDS = 120;
const RTP_CLOCK = 90_000;
/** The RTMP chunk size the gateway's client asks for. */
const CHUNK_SIZE = 4096;

/** The fixture's video as RTP datagrams, as a publisher sends them: `SECONDS` of it, timestamps and sequence numbers going on. */
function datagrams(fixture: Fixture): Buffer[] {
  const out: Buffer[] = [];
  let sequence = 0;
  const frames = SECONDS * fixture.fps;
  for (let i = 0; i < frames; i++) {
    const unit = fixture.video[i % fixture.video.length]!;
    const payloads = packetizeH264(unit.nals);
    const timestamp = Math.round((i * RTP_CLOCK) / fixture.fps) >>> 0;
    payloads.forEach((payload, n) => {
      const header = Buffer.alloc(12);
      header[0] = 0x80;
      header[1] = 102 | (n === payloads.length - 1 ? 0x80 : 0);
      header.writeUInt16BE(sequence++ & 0xffff, 2);
      header.writeUInt32BE(timestamp, 4);
      header.writeUInt32BE(0x1234_5678, 8);
      out.push(Buffer.concat([header, payload]));
    });
  }
  return out;
}

/** CPU time (µs) of one pass of `datagrams` through the path `sink` ends. */
function pass(datagrams: readonly Buffer[], sink: (frame: VideoFrame) => void): number {
  const depacketizer = new H264Depacketizer({ frame: sink }, { maxWaitMs: 50 });
  const receiver = new RtpReceiver(RTP_CLOCK, depacketizer);
  const started = process.cpuUsage();
  for (const datagram of datagrams) receiver.datagram(datagram);
  const used = process.cpuUsage(started);
  return used.user + used.system;
}

/**
 * The frame path's own CPU for one stream and one passthrough push, in-process, without the event
 * loop, the sockets or the media worker: the stream's RTP read into frames (once per stream), and
 * each frame muxed as FLV and cut into RTMP chunks (once per push). Two minutes of the fixture's
 * 720p30 video, the least of three runs; the figures tell which per-packet and per-frame steps are
 * worth cutting, against the whole push's figures of the capacity section.
 */
export function framePathCost(bench: Bench, fixture: Fixture): void {
  const packets = datagrams(fixture);
  const toFrames = (): number => pass(packets, () => {});
  const toChunks = (): number => {
    const writer = new TagWriter({
      sendMetadata: true,
      audioSampleRate: 48_000,
      metadata: () => ({}),
      onBadSps: () => {},
    });
    let chunks = 0;
    writer.useLink(
      {
        writeMetadata: () => {},
        writeVideo: (timestamp, payload) =>
          (chunks += messageChunks(6, { type: 9, timestamp, streamId: 1, body: payload }, CHUNK_SIZE).length),
        writeAudio: () => {},
      },
      true,
    );
    return pass(packets, (frame) => writer.writeFrame(frame));
  };
  const least = (run: () => number): number => {
    run(); // compiled and warm
    return Math.min(run(), run(), run());
  };
  const framesUs = least(toFrames);
  const pushUs = least(toChunks) - framesUs;
  const percent = (us: number): number => Math.round((us / (SECONDS * 1e6)) * 1e5) / 1e3;
  console.log(
    `\nThe frame path in-process: ${packets.length} RTP packets, ${SECONDS * fixture.fps} frames of 720p30 over ${SECONDS} s`,
  );
  bench.report('frame path: RTP to frames, per stream (in-process)', percent(framesUs), '% of a core');
  bench.report('frame path: frames to FLV and RTMP chunks, per push (in-process)', percent(pushUs), '% of a core');
  bench.report('frame path: per RTP packet', Math.round((framesUs / packets.length) * 100) / 100, 'µs');
}
