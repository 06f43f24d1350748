import t from 'tap';
import { packetizeH264 } from '../../kit/h264-packetizer.js';
import { avcFrame, avcSequenceHeader } from '../../src/media/flv.js';
import { avcDecoderConfiguration, H264Depacketizer, parameterSets, spsPictureSize, type AccessUnit } from '../../src/media/h264.js';
import type { MediaPacket } from '../../src/media/rtp.js';

// SPS and PPS of a 1280x720 constrained-baseline stream (as x264 and Chromium's OpenH264 make them).
const SPS_720P = Buffer.from('Z0LAH9oBQBbsBEAAAAMAQAAADyPGDKg=', 'base64');
const SPS_1080P_CROPPED = Buffer.from('Z0LAKNoB4AiflwEQAAADABAAAAMDyPGDKg==', 'base64');
const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80]);

const nal = (type: number, size: number, fill = 0xab): Buffer => Buffer.concat([Buffer.from([0x60 | type]), Buffer.alloc(size - 1, fill)]);
const keyUnit = (): Buffer[] => [SPS_720P, PPS, nal(5, 5000, 1)];
const deltaUnit = (fill: number): Buffer[] => [nal(1, 1800, fill)];

/** RTP packets for a list of access units, 3000 ticks apart, with consecutive sequence numbers. */
function packets(units: Buffer[][], firstSeq = 65530): MediaPacket[] {
  const out: MediaPacket[] = [];
  let seq = firstSeq;
  units.forEach((nals, i) => {
    const payloads = packetizeH264(nals);
    payloads.forEach((payload, j) => out.push({ sequenceNumber: seq++ & 0xffff, timestamp: 1000 + i * 3000, marker: j === payloads.length - 1, payload }));
  });
  return out;
}

function depacketize(input: MediaPacket[], times?: number[]): { units: AccessUnit[]; losses: number; d: H264Depacketizer } {
  const units: AccessUnit[] = [];
  let losses = 0;
  const d = new H264Depacketizer((u) => units.push(u), { maxWaitMs: 100, onLoss: () => losses++ });
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

t.test('FLV video tags: AVC sequence header and frames with 4-byte lengths', async (t) => {
  const unit: AccessUnit = { timestamp: 0, nals: keyUnit(), key: true };
  const { sps, pps } = parameterSets(unit);
  const record = avcDecoderConfiguration(sps!, pps!);
  t.same([...record.subarray(0, 6)], [1, 0x42, 0xc0, 0x1f, 0xff, 0xe1]);
  t.equal(record.readUInt16BE(6), SPS_720P.length);
  t.same([...avcSequenceHeader(record).subarray(0, 5)], [0x17, 0, 0, 0, 0]);
  const frame = avcFrame(unit);
  t.same([...frame.subarray(0, 5)], [0x17, 1, 0, 0, 0]);
  t.equal(frame.readUInt32BE(5), SPS_720P.length);
  t.equal(frame.length, 5 + unit.nals.reduce((n, x) => n + 4 + x.length, 0));
  t.equal(avcFrame({ timestamp: 0, nals: deltaUnit(1), key: false })[0], 0x27);
});
