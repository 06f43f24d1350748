import t from 'tap';
import { Vp8Depacketizer, Vp9Depacketizer, type VpxFrame } from '../../src/media/vpx.js';
import type { MediaPacket } from '../../src/media/sinks.js';

// VP8 (RFC 7741) and VP9 (RFC 9628) RTP to whole frames: descriptors stripped, parts joined, a
// frame with a hole never emitted, output resuming at a keyframe.

let sequence = 0;
const packet = (payload: Buffer, timestamp: number, marker: boolean): MediaPacket => ({
  sequenceNumber: sequence++ & 0xffff,
  timestamp,
  marker,
  payload,
  captureMs: timestamp / 90,
});

/** A VP8 frame as Chromium sends it: X, I with a 15-bit picture id, S on the first packet. */
function vp8(data: Buffer, timestamp: number, key: boolean, parts = 3): MediaPacket[] {
  // The VP8 payload header's P bit (bit 0 of the first byte) is 0 on a keyframe.
  const frame = Buffer.concat([Buffer.from([key ? 0x10 : 0x11]), data]);
  const size = Math.ceil(frame.length / parts);
  return Array.from({ length: parts }, (_, i) => {
    const descriptor = Buffer.from([0x80 | (i === 0 ? 0x10 : 0), 0x80, 0x80 | 0x12, 0x34]);
    return packet(Buffer.concat([descriptor, frame.subarray(i * size, (i + 1) * size)]), timestamp, i === parts - 1);
  });
}

/** A VP9 frame: I with a 7-bit picture id, B on the first packet, E on the last, P on inter frames. */
function vp9(data: Buffer, timestamp: number, key: boolean, parts = 2, scalability = false): MediaPacket[] {
  const size = Math.ceil(data.length / parts);
  return Array.from({ length: parts }, (_, i) => {
    const b0 =
      0x80 |
      (key ? 0 : 0x40) |
      (i === 0 ? 0x08 : 0) |
      (i === parts - 1 ? 0x04 : 0) |
      (scalability && i === 0 ? 0x02 : 0);
    // Scalability structure: one spatial layer with its size (Y), one picture group with one reference (G).
    const ss = scalability && i === 0 ? [0x18, 0x05, 0x00, 0x02, 0xd0, 0x01, 0x04, 0x01] : [];
    const descriptor = Buffer.from([b0, 0x21, ...ss]);
    return packet(Buffer.concat([descriptor, data.subarray(i * size, (i + 1) * size)]), timestamp, i === parts - 1);
  });
}

function collect<D extends Vp8Depacketizer | Vp9Depacketizer>(
  make: (sink: { frame(frame: VpxFrame): void }) => D,
): { frames: VpxFrame[]; d: D } {
  const frames: VpxFrame[] = [];
  return { frames, d: make({ frame: (frame) => frames.push(frame as VpxFrame) }) };
}

t.test('VP8: a frame of three packets is joined without its descriptors', async (t) => {
  const { frames, d } = collect((onFrame) => new Vp8Depacketizer(onFrame, { maxWaitMs: 100 }));
  const data = Buffer.alloc(3000, 7);
  for (const p of vp8(data, 0, true)) d.push(p);
  for (const p of vp8(Buffer.alloc(900, 9), 3000, false)) d.push(p);
  t.equal(frames.length, 2);
  t.ok(frames[0]!.key, 'the first is a keyframe');
  t.same(frames[0]!.data, Buffer.concat([Buffer.from([0x10]), data]), 'its bytes, descriptors left out');
  t.notOk(frames[1]!.key, 'an inter frame is not');
});

t.test('VP8: a keyframe carries the picture size its frame header codes, and its capture time', async (t) => {
  const { frames, d } = collect((sink) => new Vp8Depacketizer(sink, { maxWaitMs: 100 }));
  // After the payload header's byte: the rest of the frame tag, the start code 9d 01 2a, 1280 and 720 (14 bits each, little-endian).
  const header = Buffer.from([0, 0, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02]);
  for (const p of vp8(Buffer.concat([header, Buffer.alloc(500, 3)]), 90_000, true)) d.push(p);
  for (const p of vp8(Buffer.alloc(500, 4), 93_000, false)) d.push(p);
  t.same(frames[0]!.size, { width: 1280, height: 720 });
  t.equal(frames[1]!.size, undefined, 'an inter frame says none');
  t.same(
    frames.map((f) => f.captureMs),
    [1000, 1033.3333333333333],
    'each timed as its packets were',
  );
});

t.test('VP8: nothing before the first keyframe; a lost packet drops its frame until the next keyframe', async (t) => {
  let losses = 0;
  const { frames, d } = collect((onFrame) => new Vp8Depacketizer(onFrame, { maxWaitMs: 100, onLoss: () => losses++ }));
  for (const p of vp8(Buffer.alloc(500), 0, false)) d.push(p);
  t.equal(frames.length, 0, 'an inter frame cannot start the stream');
  for (const p of vp8(Buffer.alloc(500), 3000, true)) d.push(p);
  const broken = vp8(Buffer.alloc(500), 6000, false);
  const start = performance.now();
  d.push(broken[0]!, start);
  d.push(broken[2]!, start); // the middle packet never comes
  for (const p of vp8(Buffer.alloc(500), 9000, false)) d.push(p, start + 200);
  t.equal(frames.length, 1, 'the broken frame and the inter frame after it are dropped');
  t.equal(d.framesLost, 1);
  t.equal(losses, 1, 'a keyframe is asked for');
  for (const p of vp8(Buffer.alloc(500), 12000, true)) d.push(p, start + 300);
  t.equal(frames.length, 2, 'output resumes at the keyframe');
});

t.test('VP8: a frame whose first packet is missing is never emitted', async (t) => {
  const { frames, d } = collect((onFrame) => new Vp8Depacketizer(onFrame, { maxWaitMs: 0 }));
  for (const p of vp8(Buffer.alloc(500), 0, true)) d.push(p);
  const next = vp8(Buffer.alloc(500), 3000, true);
  sequence++; // as if next[0] had a sequence number and was lost
  for (const p of next.slice(1)) d.push({ ...p, sequenceNumber: p.sequenceNumber + 1 });
  t.equal(frames.length, 1);
});

t.test('VP9: keyframes told by P, frames joined, the scalability structure skipped', async (t) => {
  const { frames, d } = collect((onFrame) => new Vp9Depacketizer(onFrame, { maxWaitMs: 100 }));
  const key = Buffer.alloc(2000, 3);
  for (const p of vp9(key, 0, true, 2, true)) d.push(p);
  for (const p of vp9(Buffer.alloc(600, 4), 3000, false)) d.push(p);
  t.equal(frames.length, 2);
  t.ok(frames[0]!.key);
  t.same(frames[0]!.data, key, "the frame's bytes alone");
  t.notOk(frames[1]!.key);
  t.same(frames[1]!.data, Buffer.alloc(600, 4));
});
