import t from 'tap';
import { isKeyframeStart } from '../../src/media/codecs.js';
import { H264Depacketizer } from '../../src/media/h264.js';
import type { VideoFrame } from '../../src/media/sinks.js';

// SPS of Chromium's OpenH264 at 1280x720, constrained baseline 3.1.
const SPS_720P = Buffer.from('Z0LAH4xoBQBbkBgB+lA=', 'base64');
const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80]);

function stapA(...nals: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([24]), ...nals.flatMap((n) => [Buffer.from([n.length >> 8, n.length & 0xff]), n])]);
}

t.test('H.264 keyframe starts: SPS, IDR, STAP-A with SPS, FU-A start of an IDR', async (t) => {
  t.ok(isKeyframeStart('H264', Buffer.from([0x67, 0x42])));
  t.ok(isKeyframeStart('H264', Buffer.from([0x65, 0x88])));
  t.ok(isKeyframeStart('H264', stapA(SPS_720P, PPS)));
  t.ok(isKeyframeStart('H264', Buffer.from([0x7c, 0x85, 0x00])), 'FU-A, start bit, IDR');
  t.notOk(isKeyframeStart('H264', Buffer.from([0x7c, 0x05, 0x00])), 'FU-A continuation');
  t.notOk(isKeyframeStart('H264', Buffer.from([0x7c, 0x81, 0x00])), 'FU-A start of a non-IDR slice');
  t.notOk(isKeyframeStart('H264', Buffer.from([0x41, 0x9a])), 'non-IDR slice');
});

t.test('VP8 and VP9 keyframe starts', async (t) => {
  t.ok(isKeyframeStart('VP8', Buffer.from([0x10, 0x00, 0x9d])), 'S=1, PID=0, P=0');
  t.notOk(isKeyframeStart('VP8', Buffer.from([0x10, 0x01])), 'inter frame');
  t.ok(isKeyframeStart('VP8', Buffer.from([0x90, 0x80, 0x81, 0x23, 0x00])), 'with a 15-bit picture ID');
  t.ok(isKeyframeStart('VP9', Buffer.from([0x88, 0x00])), 'B=1, P=0');
  t.notOk(isKeyframeStart('VP9', Buffer.from([0xc8, 0x00])), 'inter-picture predicted');
});

t.test('parameter sets are taken from a STAP-A', async (t) => {
  const units: VideoFrame[] = [];
  const depacketizer = new H264Depacketizer({ frame: (unit) => units.push(unit) }, { maxWaitMs: 100 });
  depacketizer.push({ sequenceNumber: 1, timestamp: 0, marker: false, payload: stapA(SPS_720P, PPS), captureMs: 0 });
  depacketizer.push({
    sequenceNumber: 2,
    timestamp: 0,
    marker: true,
    payload: Buffer.from([0x65, 0x88, 0x84]),
    captureMs: 0,
  });
  const { sps, pps } = units[0]!;
  t.same(sps, SPS_720P);
  t.same(pps, PPS);
});
