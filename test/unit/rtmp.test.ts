import t from 'tap';
import { spawnSync } from 'node:child_process';
import { FlvReader } from '../../src/media/flv.js';
import { decodeAmf0, EcmaArray, encodeAmf0 } from '../../src/media/amf0.js';
import { ChunkReader, encodeMessage, MessageType } from '../../src/rtmp/chunks.js';

t.test('AMF0 round trip: strings, numbers, booleans, null, objects and ECMA arrays', async (t) => {
  const encoded = encodeAmf0('connect', 1, { app: 'live', n: 2.5, ok: true }, null, new EcmaArray({ width: 1280 }));
  t.same(decodeAmf0(encoded), ['connect', 1, { app: 'live', n: 2.5, ok: true }, null, { width: 1280 }]);
  t.equal(encodeAmf0(new EcmaArray({ a: 1 }))[0], 0x08, 'onMetaData is written as an ECMA array');
  t.throws(() => decodeAmf0(Buffer.from([0x11])), /not supported/);
});

t.test('messages larger than the chunk size are split and reassembled, byte by byte', async (t) => {
  const body = Buffer.alloc(10_000, 7);
  const wire = Buffer.concat([
    encodeMessage(
      2,
      { type: MessageType.SET_CHUNK_SIZE, timestamp: 0, streamId: 0, body: Buffer.from([0, 0, 0x10, 0]) },
      128,
    ),
    encodeMessage(6, { type: MessageType.VIDEO, timestamp: 40, streamId: 1, body }, 4096),
    encodeMessage(4, { type: MessageType.AUDIO, timestamp: 0x1234567, streamId: 1, body: Buffer.alloc(300, 1) }, 4096),
    encodeMessage(300, { type: MessageType.AUDIO, timestamp: 5, streamId: 1, body: Buffer.from([1]) }, 4096),
  ]);
  const reader = new ChunkReader();
  const messages = [...wire].flatMap((byte) => reader.push(Buffer.from([byte])));
  t.same(
    messages.map((m) => [m.type, m.timestamp, m.streamId, m.body.length]),
    [
      [MessageType.SET_CHUNK_SIZE, 0, 0, 4],
      [MessageType.VIDEO, 40, 1, 10_000],
      [MessageType.AUDIO, 0x1234567, 1, 300],
      [MessageType.AUDIO, 5, 1, 1],
    ],
  );
  t.ok(messages[1]!.body.equals(body));
});

t.test('extended timestamps are carried in continuation chunks too', async (t) => {
  const wire = encodeMessage(
    6,
    { type: MessageType.VIDEO, timestamp: 0xffffff + 10, streamId: 1, body: Buffer.alloc(300, 2) },
    128,
  );
  t.equal(wire.length, 12 + 4 + 300 + 2 * (1 + 4));
  const [message] = new ChunkReader().push(wire);
  t.equal(message!.timestamp, 0xffffff + 10);
  t.equal(message!.body.length, 300);
});

t.test('FLV reader returns tags as they complete', async (t) => {
  const tag = (type: number, timestamp: number, body: Buffer): Buffer => {
    const header = Buffer.alloc(11);
    header[0] = type;
    header.writeUIntBE(body.length, 1, 3);
    header.writeUIntBE(timestamp & 0xffffff, 4, 3);
    header[7] = timestamp >>> 24;
    const size = Buffer.alloc(4);
    size.writeUInt32BE(11 + body.length);
    return Buffer.concat([header, body, size]);
  };
  const stream = Buffer.concat([
    Buffer.from('FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'),
    tag(8, 21, Buffer.from([0xaf, 0, 0x11, 0x90])),
    tag(9, 0x01000002, Buffer.from([0x17, 1, 0, 0, 0])),
  ]);
  const reader = new FlvReader();
  const first = reader.push(stream.subarray(0, 20));
  t.same(first, []);
  const tags = reader.push(stream.subarray(20));
  t.same(
    tags.map((x) => [x.type, x.timestamp, x.body.length]),
    [
      [8, 21, 4],
      [9, 0x01000002, 5],
    ],
  );
  t.throws(() => new FlvReader().push(Buffer.alloc(20)), /not an FLV stream/);
});

t.test("ffmpeg's FLV timestamps past 2^31 ms (24.9 days), where it wraps them to 0, are read on", async (t) => {
  // 8 s of AAC whose times start 3.6 s before 2^31 ms.
  const made = spawnSync(
    'ffmpeg',
    [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=440:d=8:r=48000', '-c:a', 'aac'],
      ...['-output_ts_offset', String((2 ** 31 - 3600) / 1000), '-f', 'flv', 'pipe:1'],
    ],
    { maxBuffer: 16 << 20 },
  );
  t.equal(made.stderr.toString(), '');
  const flv = made.stdout;
  // Its header tags (onMetaData, the AAC header) are stamped 0: the stream is read from its first frame.
  let at = 13;
  for (let i = 0; i < 2; i++) at += 11 + flv.readUIntBE(at + 1, 3) + 4;
  const reader = new FlvReader();
  const times = reader.push(Buffer.concat([flv.subarray(0, 13), flv.subarray(at)])).map((tag) => tag.timestamp);
  t.ok(times.at(-1)! < 2 ** 31 - 3600 + 8000 + 100 && times.at(-1)! > 2 ** 31, `the last at ${times.at(-1)} ms`);
  const steps = times.slice(1).map((time, i) => time - times[i]!);
  t.same(
    steps.filter((step) => step < 0 || step > 30),
    [],
    `each of ${times.length} frames 21 or 22 ms after the one before, across the wrap`,
  );
});
