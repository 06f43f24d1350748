import t from 'tap';
import { packetizeH264 } from '../../kit/h264-packetizer.js';
import {
  avcDecoderConfiguration,
  avcSequenceHeader,
  H264Depacketizer,
  spsPictureSize,
  type H264Frame,
} from '../../src/media/h264.js';
import type { MediaPacket } from '../../src/media/sinks.js';

// SPS and PPS of a 1280x720 constrained-baseline stream (as x264 and Chromium's OpenH264 make them).
const SPS_720P = Buffer.from('Z0LAH9oBQBbsBEAAAAMAQAAADyPGDKg=', 'base64');
const SPS_1080P_CROPPED = Buffer.from('Z0LAKNoB4AiflwEQAAADABAAAAMDyPGDKg==', 'base64');
const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80]);

const nal = (type: number, size: number, fill = 0xab): Buffer =>
  Buffer.concat([Buffer.from([0x60 | type]), Buffer.alloc(size - 1, fill)]);
const keyUnit = (): Buffer[] => [SPS_720P, PPS, nal(5, 5000, 1)];
const deltaUnit = (fill: number): Buffer[] => [nal(1, 1800, fill)];

/** RTP packets for a list of access units, 3000 ticks apart, with consecutive sequence numbers. */
function packets(units: Buffer[][], firstSeq = 65530): MediaPacket[] {
  const out: MediaPacket[] = [];
  let seq = firstSeq;
  units.forEach((nals, i) => {
    const payloads = packetizeH264(nals);
    payloads.forEach((payload, j) =>
      out.push({
        sequenceNumber: seq++ & 0xffff,
        timestamp: 1000 + i * 3000,
        marker: j === payloads.length - 1,
        payload,
        captureMs: 500 + i * 33,
      }),
    );
  });
  return out;
}

function depacketize(
  input: MediaPacket[],
  times?: number[],
): { units: H264Frame[]; losses: number; d: H264Depacketizer } {
  const units: H264Frame[] = [];
  let losses = 0;
  const d = new H264Depacketizer(
    { frame: (u) => units.push(u as H264Frame) },
    { maxWaitMs: 100, onLoss: () => losses++ },
  );
  input.forEach((p, i) => d.push(p, times?.[i] ?? 0));
  return { units, losses, d };
}

t.test('packetizing and depacketizing gives back the same access units, across a sequence wrap', async (t) => {
  const source = [keyUnit(), deltaUnit(2), deltaUnit(3)];
  const rtp = packets(source);
  t.ok(
    rtp.some((p) => (p.payload[0]! & 0x1f) === 28),
    'large NAL units went out as FU-A',
  );
  t.ok(
    rtp.some((p) => (p.payload[0]! & 0x1f) === 24),
    'SPS and PPS went out as STAP-A',
  );
  const { units, losses } = depacketize(rtp);
  t.equal(losses, 0);
  t.same(
    units.map((u) => u.nals),
    source,
  );
  t.same(
    units.map((u) => u.key),
    [true, false, false],
  );
  t.same(
    units.map((u) => u.timestamp),
    [1000, 4000, 7000],
  );
  t.same(
    units.map((u) => u.captureMs),
    [500, 533, 566],
    'each frame timed as its packets were',
  );
  t.same(units[0]!.size, { width: 1280, height: 720 }, 'the keyframe carries the size its SPS codes');
  t.equal(units[1]!.size, undefined, 'a frame without an SPS has none');
});

t.test('out-of-order packets are put back in order', async (t) => {
  const source = [keyUnit(), deltaUnit(2)];
  const rtp = packets(source);
  const swapped = [...rtp];
  [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
  t.same(
    depacketize(swapped).units.map((u) => u.nals),
    source,
  );
});

t.test('output starts at the first keyframe', async (t) => {
  const { units } = depacketize(packets([deltaUnit(9), keyUnit(), deltaUnit(2)]));
  t.same(
    units.map((u) => u.key),
    [true, false],
  );
});

t.test('a lost packet drops the damaged frame and everything up to the next keyframe, once waited for', async (t) => {
  const source = [keyUnit(), deltaUnit(2), deltaUnit(3), deltaUnit(4), keyUnit(), deltaUnit(5)];
  const rtp = packets(source);
  const lostIndex = rtp.findIndex((p) => p.timestamp === 4000) + 1; // a middle fragment of frame 2
  const arrived = rtp.filter((_, i) => i !== lostIndex);
  // Packets arrive 10 ms apart: the hole is given up once a later packet waited 100 ms.
  const { units, losses, d } = depacketize(
    arrived,
    arrived.map((_, i) => i * 10),
  );
  t.equal(losses, 1, 'one keyframe request');
  t.ok(d.framesLost >= 1);
  t.same(
    units.map((u) => u.timestamp),
    [1000, 13000, 16000],
    'frames 2-4 are dropped, output resumes at the keyframe',
  );
});

t.test('a packet that arrives within the wait fills its hole', async (t) => {
  const rtp = packets([keyUnit(), deltaUnit(2)]);
  const late = rtp.splice(1, 1)[0]!;
  rtp.splice(3, 0, late);
  const { units, losses } = depacketize(
    rtp,
    rtp.map((_, i) => i * 10),
  );
  t.equal(losses, 0);
  t.equal(units.length, 2);
});

t.test('SPS picture size, with frame cropping', async (t) => {
  t.same(spsPictureSize(SPS_720P), { width: 1280, height: 720 });
  t.same(spsPictureSize(SPS_1080P_CROPPED), { width: 1920, height: 1080 });
  t.throws(() => spsPictureSize(SPS_720P.subarray(0, 4)));
});

t.test('FLV video tags: AVC sequence header and frames with 4-byte lengths, made as the frames are', async (t) => {
  const [key, delta] = depacketize(packets([keyUnit(), deltaUnit(1)])).units;
  t.same(key!.sps, SPS_720P);
  t.same(key!.pps, PPS);
  const record = avcDecoderConfiguration(SPS_720P, PPS);
  t.same([...record.subarray(0, 6)], [1, 0x42, 0xc0, 0x1f, 0xff, 0xe1]);
  t.equal(record.readUInt16BE(6), SPS_720P.length);
  t.same([...avcSequenceHeader(SPS_720P, PPS).subarray(0, 5)], [0x17, 0, 0, 0, 0]);
  t.same(
    key!.sequenceHeader,
    avcSequenceHeader(SPS_720P, PPS),
    'the keyframe carries the sequence header of its SPS and PPS',
  );
  t.equal(delta!.sequenceHeader, undefined);
  const flv = key!.flv;
  t.same([...flv.subarray(0, 5)], [0x17, 1, 0, 0, 0]);
  t.equal(flv.readUInt32BE(5), SPS_720P.length);
  t.equal(flv.length, 5 + keyUnit().reduce((n, x) => n + 4 + x.length, 0));
  t.equal(delta!.flv[0], 0x27);
  const annexB = key!.bitstream();
  t.same(
    annexB.subarray(0, 4 + SPS_720P.length),
    Buffer.concat([Buffer.from([0, 0, 0, 1]), SPS_720P]),
    'Annex B: each NAL unit after a start code',
  );
  t.equal(key!.bitstream(), annexB, 'made once');
});
