import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { av1RtpPayloads, temporalUnits } from '../../kit/av1-packetizer.js';
import {
  Av1Depacketizer,
  av1CodecConfiguration,
  type Av1Frame,
  lowOverheadObus,
  OBU_TEMPORAL_DELIMITER,
  readLeb128,
  leb128,
  sizedObu,
} from '../../src/media/av1.js';
import type { MediaPacket } from '../../src/media/sinks.js';

// A real AV1 encoder's stream (libaom), packetized as a WebRTC sender does and read back: every
// temporal unit whole, the keyframes found with their sequence header, and what comes out decodes
// to the very pictures the encoder's own stream decodes to.

const run = promisify(execFile);
const FRAMES = 12;
const GOP = 6;

let dir = '';
let stream = Buffer.alloc(0);
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'av1-'));
  const { stdout } = await run(
    'ffmpeg',
    [
      ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10'],
      ...[
        '-frames:v',
        String(FRAMES),
        '-pix_fmt',
        'yuv420p',
        '-c:v',
        'libaom-av1',
        '-cpu-used',
        '8',
        '-usage',
        'realtime',
      ],
      ...['-g', String(GOP), '-keyint_min', String(GOP), '-threads', '1', '-f', 'obu', 'pipe:1'],
    ],
    { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
  );
  stream = stdout;
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** The temporal units of the stream through RTP (payloads of at most `mtu` bytes) and the depacketizer. */
function throughRtp(
  units: Buffer[],
  mtu: number,
  options: { countInW?: boolean; drop?: (unit: number, packet: number) => boolean } = {},
): { frames: Av1Frame[]; losses: number } {
  const frames: Av1Frame[] = [];
  let losses = 0;
  const depacketizer = new Av1Depacketizer(
    { frame: (f) => frames.push(f as Av1Frame) },
    { maxWaitMs: 50, onLoss: () => losses++ },
  );
  let sequenceNumber = 65_530; // across the wrap
  let now = 0;
  units.forEach((unit, i) => {
    const payloads = av1RtpPayloads(unit, mtu, i % GOP === 0, options.countInW ?? true);
    payloads.forEach((payload, p) => {
      const packet: MediaPacket = {
        sequenceNumber: sequenceNumber++ & 0xffff,
        timestamp: i * 9000,
        marker: p === payloads.length - 1,
        payload,
        captureMs: i * 100,
      };
      now += 10;
      if (!options.drop?.(i, p)) depacketizer.push(packet, now);
    });
  });
  return { frames, losses };
}

/** What the depacketizer should give for a temporal unit: its OBUs but the temporal delimiter, each with its size. */
function expected(unit: Buffer): Buffer {
  return Buffer.concat([...lowOverheadObus(unit)].filter((o) => o.type !== OBU_TEMPORAL_DELIMITER).map(sizedObu));
}

/** The frames' MD5s as ffmpeg decodes a low-overhead stream (a temporal delimiter put before each unit). */
async function decodedMd5s(units: Buffer[], name: string): Promise<string[]> {
  const file = join(dir, `${name}.obu`);
  const delimiter = Buffer.from([0x12, 0x00]);
  await writeFile(file, Buffer.concat(units.flatMap((u) => [delimiter, u])));
  const { stdout } = await run('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'obu',
    '-i',
    file,
    '-f',
    'framemd5',
    '-',
  ]);
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').at(-1)!.trim());
}

t.test('every temporal unit whole through RTP, in small and large packets, W counted or not', async (t) => {
  const units = temporalUnits(stream);
  t.equal(units.length, FRAMES, 'the encoder gave a temporal unit per frame');
  for (const [mtu, countInW] of [
    [1200, true],
    [120, true],
    [60, false],
  ] as const) {
    const { frames, losses } = throughRtp(units, mtu, { countInW });
    t.equal(frames.length, FRAMES, `${mtu}-byte packets: every frame`);
    t.equal(losses, 0);
    t.ok(
      frames.every((f, i) => f.data.equals(expected(units[i]!))),
      `${mtu}-byte packets: each unit as sent, without its temporal delimiter, each OBU with its size`,
    );
    t.same(
      frames.map((f) => f.key),
      units.map((_, i) => i % GOP === 0),
      'the keyframes are the GOP starts',
    );
  }
  const { frames } = throughRtp(units, 200);
  const source = await decodedMd5s(units.map(expected), 'source');
  t.equal(source.length, FRAMES);
  t.same(
    await decodedMd5s(
      frames.map((f) => f.data),
      'through-rtp',
    ),
    source,
    'the frames decode to the pictures the encoder made',
  );
});

t.test('a keyframe carries its sequence header, read: the picture size and what av1C says', async (t) => {
  const { frames } = throughRtp(temporalUnits(stream), 1200);
  const key = frames[0]!;
  t.same(key.size, { width: 160, height: 120 });
  t.match(key.sequence!.info, { profile: 0, monochrome: false, subsamplingX: true, subsamplingY: true });
  t.equal(frames[1]!.sequence, undefined, 'a frame between keyframes carries none');
  const record = av1CodecConfiguration(key.sequence!.info, key.sequence!.obu);
  t.equal(record[0], 0x81, 'marker and version 1');
  t.equal(record[1]! >> 5, 0, 'profile 0');
  t.equal(record[1]! & 0x1f, key.sequence!.info.level);
  t.equal(record[2]! & 0x0c, 0x0c, '4:2:0');
  const configObus = [...lowOverheadObus(record.subarray(4))];
  t.equal(configObus.length, 1);
  t.equal(configObus[0]!.type, 1, 'its configOBUs: the sequence header, with its size');
  t.ok(configObus[0]!.payload.equals(key.sequence!.obu.payload));
});

t.test(
  'a packet lost: that frame and the ones after it up to the next keyframe are not given, a keyframe asked for',
  async (t) => {
    const units = temporalUnits(stream);
    const { frames, losses } = throughRtp(units, 120, { drop: (unit, packet) => unit === 2 && packet === 0 });
    t.same(
      frames.map((f) => f.timestamp / 9000),
      [0, 1, ...Array.from({ length: FRAMES - GOP }, (_, i) => GOP + i)],
      'frames 2 to 5 missing, output again from the keyframe',
    );
    t.equal(losses, 1);
  },
);

t.test('malformed payloads damage their frame, never throw', async (t) => {
  const frames: Av1Frame[] = [];
  const depacketizer = new Av1Depacketizer({ frame: (f) => frames.push(f as Av1Frame) }, { maxWaitMs: 50 });
  const units = temporalUnits(stream);
  const good = av1RtpPayloads(units[0]!, 1200, true);
  const bad = [
    Buffer.from([0x80, 0x0a, 0x00]), // Z set, nothing to continue
    Buffer.from([0x00, 0x7f, 0x30]), // a length past the end
    Buffer.from([0x10, 0x80 | 0x30]), // forbidden bit
    Buffer.from([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // a LEB128 that never ends
  ];
  let seq = 0;
  bad.forEach((payload, i) =>
    depacketizer.push({ sequenceNumber: seq++, timestamp: i * 9000, marker: true, payload, captureMs: 0 }),
  );
  t.equal(frames.length, 0);
  good.forEach((payload, i) =>
    depacketizer.push({
      sequenceNumber: seq++,
      timestamp: 90_000,
      marker: i === good.length - 1,
      payload,
      captureMs: 0,
    }),
  );
  t.equal(frames.length, 1, 'a good keyframe after them is given');
});

t.test('LEB128 both ways', async (t) => {
  for (const value of [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 32 - 1, 2 ** 40])
    t.same(readLeb128(leb128(value), 0), { value, length: leb128(value).length }, String(value));
  t.equal(readLeb128(Buffer.from([0x80]), 0), undefined, 'cut short');
});
