import t from 'tap';
import { waitFor } from '../../kit/processes.js';
import { monotonicMs } from '../../src/core/clock.js';
import { DuplicateFilter, parseRtp, RtpReceiver, StreamStart } from '../../src/media/rtp.js';
import type { MediaPacket } from '../../src/media/sinks.js';

t.test(
  'DuplicateFilter counts packets lost around the 16-bit wrap of sequence numbers, and late ones as received',
  async (t) => {
    const f = new DuplicateFilter();
    for (const seq of [65530, 65531, 65533, 65535, 1, 2, 5]) t.ok(f.accept(seq));
    t.equal(f.lost, 5, '65532, 65534, 0, 3 and 4 never came');
    t.ok(f.accept(0), 'a retransmission of 0, after the wrap');
    t.notOk(f.accept(65535), 'a repeat from before the wrap');
    t.equal(f.lost, 4);
    for (let seq = 6; seq < 6 + 3 * 65536; seq++) f.accept(seq & 0xffff);
    t.equal(f.lost, 4, 'three more wraps with nothing lost: the count stays');
  },
);

t.test('DuplicateFilter drops repeated sequence numbers, also across the 16-bit wrap', async (t) => {
  const f = new DuplicateFilter();
  t.ok(f.accept(65534));
  t.ok(f.accept(65535));
  t.ok(f.accept(0));
  t.notOk(f.accept(65535), 'a probe re-sending an old packet is dropped');
  t.notOk(f.accept(0));
  t.ok(f.accept(2));
  t.ok(f.accept(1), 'a late but new packet passes');
  t.notOk(f.accept(1));
});

t.test('DuplicateFilter forgets numbers that left the window, so they pass after a full cycle', async (t) => {
  const f = new DuplicateFilter();
  let accepted = 0;
  for (let i = 0; i < 70000; i++) if (f.accept(i & 0xffff)) accepted++;
  t.equal(accepted, 70000, 'every number is new when it comes round again');
  t.notOk(f.accept((70000 - DuplicateFilter.WINDOW - 10) & 0xffff), 'too old for the window');
});

t.test('DuplicateFilter starts afresh when the sender restarts its numbering', async (t) => {
  const f = new DuplicateFilter();
  for (let i = 30000; i < 30010; i++) f.accept(i);
  t.ok(f.accept(5), 'far behind: treated as a new sequence');
  t.ok(f.accept(6));
  t.notOk(f.accept(5));
});

t.test(
  'DuplicateFilter counts packets never received: a hole until its retransmission comes, across the wrap',
  async (t) => {
    const f = new DuplicateFilter();
    for (const seq of [65533, 65534, 0, 1]) f.accept(seq); // 65535 missing
    t.equal(f.lost, 1, 'one hole');
    f.accept(1); // a duplicate
    t.equal(f.lost, 1, 'a duplicate fills nothing');
    f.accept(65535); // the retransmission
    t.equal(f.lost, 0, 'filled by the retransmission');
    for (const seq of [5, 6]) f.accept(seq);
    t.equal(f.lost, 3, '2, 3 and 4 missing');
  },
);

t.test('parseRtp reads the header and finds the payload past CSRCs, the header extension and padding', async (t) => {
  const header = Buffer.from([0x80, 0x60, 0x12, 0x34, 0x00, 0x00, 0x0b, 0xb8, 0xde, 0xad, 0xbe, 0xef]);
  t.same(parseRtp(Buffer.concat([header, Buffer.from('abc')])), {
    sequenceNumber: 0x1234,
    timestamp: 3000,
    marker: false,
    payload: Buffer.from('abc'),
    captureMs: 0,
  });
  // Marker, two CSRCs, a one-word extension, three bytes of padding.
  const full = Buffer.concat([
    Buffer.from([0xb2, 0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]),
    Buffer.alloc(8, 7),
    Buffer.from([0xbe, 0xde, 0x00, 0x01, 0x10, 0x01, 0x00, 0x00]),
    Buffer.from('payload'),
    Buffer.from([0, 0, 3]),
  ]);
  t.same(parseRtp(full), {
    sequenceNumber: 0xffff,
    timestamp: 0xffffffff,
    marker: true,
    payload: Buffer.from('payload'),
    captureMs: 0,
  });
  t.equal(parseRtp(Buffer.from([0x80, 0x60])), undefined, 'too short');
  t.equal(parseRtp(Buffer.concat([Buffer.from([0x40]), header.subarray(1)])), undefined, 'not version 2');
  t.equal(
    parseRtp(Buffer.concat([Buffer.from([0x90]), header.subarray(1), Buffer.from([0xbe, 0xde, 0x00, 0x09])])),
    undefined,
    'an extension longer than the packet',
  );
  t.equal(
    parseRtp(Buffer.concat([Buffer.from([0xa0]), header.subarray(1), Buffer.from([0, 40])])),
    undefined,
    'more padding than the packet',
  );
});

t.test(
  'RtpReceiver: datagrams read, repeats dropped and counted, each packet timed on the track clock and handed on',
  async (t) => {
    const taken: MediaPacket[] = [];
    const receiver = new RtpReceiver(90000, { push: (packet) => void taken.push(packet) });
    const datagram = (seq: number, timestamp: number, payload: string): Buffer => {
      const header = Buffer.from([0x80, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
      header.writeUInt16BE(seq, 2);
      header.writeUInt32BE(timestamp, 4);
      return Buffer.concat([header, Buffer.from(payload)]);
    };
    receiver.datagram(datagram(1, 90000, 'a'));
    receiver.datagram(datagram(2, 93000, 'bb'));
    receiver.datagram(datagram(2, 93000, 'bb'));
    receiver.datagram(Buffer.from([1, 2, 3]));
    receiver.packet({ sequenceNumber: 4, timestamp: 99000, marker: true, payload: Buffer.from('dddd'), captureMs: 0 });
    t.same(
      taken.map((p) => p.payload.toString()),
      ['a', 'bb', 'dddd'],
      'the repeat and what is not RTP go no further',
    );
    t.same(
      taken.map((p) => Math.round(p.captureMs - taken[0]!.captureMs)),
      [0, 33, 100],
      'timed from the first packet',
    );
    t.equal(
      Math.round(receiver.captureMs(96000)! - taken[0]!.captureMs),
      67,
      'any timestamp of the track, on the same clock',
    );
    t.match(
      { packets: receiver.packets, bytes: receiver.bytes, duplicates: receiver.duplicates, lost: receiver.lost },
      { packets: 3, bytes: 7, duplicates: 1, lost: 1 },
    );
  },
);

t.test(
  "a local stream's tracks share one start: each first packet placed where its encoder's timestamps say, whichever came first",
  async (t) => {
    const start = new StreamStart();
    const times: Record<string, number[]> = { video: [], audio: [] };
    const receiver = (kind: 'video' | 'audio', rate: number, startMs: number): RtpReceiver =>
      new RtpReceiver(
        rate,
        { push: (packet) => void times[kind]!.push(packet.captureMs) },
        { local: { start, startMs } },
      );
    const audio = receiver('audio', 48000, 40);
    const video = receiver('video', 90000, 0);
    const packet = (seq: number, timestamp: number): MediaPacket => ({
      sequenceNumber: seq,
      timestamp,
      marker: true,
      payload: Buffer.from('x'),
      captureMs: 0,
    });
    // The sound's first packet (40 ms after the start) comes first, the first picture later still.
    audio.packet(packet(1, 1000));
    await new Promise((resolve) => setTimeout(resolve, 30));
    video.packet(packet(1, 5000));
    video.packet(packet(2, 5000 + 3000));
    t.equal(
      times.audio![0]! - times.video![0]!,
      40,
      "the sound's first packet 40 ms after the first picture, as the encoder timed them, not as they arrived",
    );
    t.equal(
      Math.round((times.video![1]! - times.video![0]!) * 1000),
      33333,
      'and each track on its own rate from there (33.333 ms)',
    );
  },
);

t.test(
  "RtpReceiver: a publisher's first packets read at once wait for the burst's end, and are timed from its last",
  async (t) => {
    const taken: MediaPacket[] = [];
    const receiver = new RtpReceiver(48000, { push: (packet) => void taken.push(packet) }, { settleMs: 30 });
    const packet = (seq: number, timestamp: number): MediaPacket => ({
      sequenceNumber: seq,
      timestamp,
      marker: false,
      payload: Buffer.from('x'),
      captureMs: 0,
    });
    const firstArrivalMs = monotonicMs();
    for (let i = 0; i < 50; i++) receiver.packet(packet(i, i * 960)); // 1 s of sound, read at once
    t.equal(taken.length, 0, 'held while the burst lasts');
    t.equal(receiver.captureMs(0), undefined, 'the track has no time yet');
    await waitFor('the search to have had its time', () => monotonicMs() - firstArrivalMs >= 30);
    receiver.packet(packet(50, 50 * 960));
    t.equal(taken.length, 51, 'all handed on, in order, once it has');
    t.same(
      taken.slice(0, 3).map((p) => p.sequenceNumber),
      [0, 1, 2],
    );
    t.ok(
      taken[0]!.captureMs <= firstArrivalMs - 970,
      `the first packet placed ${(firstArrivalMs - taken[0]!.captureMs).toFixed(0)} ms before it was read`,
    );
    t.equal(Math.round(taken[49]!.captureMs - taken[0]!.captureMs), 980, 'each packet where its timestamp says');
  },
);
