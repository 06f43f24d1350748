import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { loadFixture, oggPackets } from '../../kit/fixture.js';
import { OpusTimeline } from '../../src/audio/opus-timeline.js';
import { SinkQueue } from '../../src/publishers/sink-queue.js';
import { OPUS_SILENCE_20MS, opusPacketSamples } from '../../src/media/ogg.js';
import { OPUS_TIMING } from '../../src/pipeline/ffmpeg-args.js';
import { monotonicMs } from '../../src/core/clock.js';
import { waitFor } from '../../kit/processes.js';

// The publisher's Opus passed to ffmpeg as Ogg pages, on the PCM timeline's clock: packets placed by
// their capture time, gaps and stalls filled with silent frames, late packets dropped, muted
// packets replaced by silence; and ffmpeg reads what it writes, checksums included.

const fixture = loadFixture(join(import.meta.dirname, '..', '..', '.bench', 'fixture'));

function timeline(): { timeline: OpusTimeline; written: Buffer[]; at: (ms: number) => void } {
  let now = 1000;
  const written: Buffer[] = [];
  const r = new OpusTimeline({ write: (pages) => void written.push(pages), now: () => now });
  return { timeline: r, written, at: (ms) => void (now = ms) };
}

t.test('the samples of an Opus packet, from its table of contents', async (t) => {
  t.equal(opusPacketSamples(fixture.audio[0]!), 960, 'the fixture: 20 ms');
  t.equal(opusPacketSamples(OPUS_SILENCE_20MS), 960);
  t.equal(opusPacketSamples(Buffer.from([0xf8 | 1, 0])), 1920, 'two frames (code 1)');
  t.equal(opusPacketSamples(Buffer.from([0x00 | 3, 3])), 1440, 'SILK 10 ms, three frames (code 3)');
  t.equal(opusPacketSamples(Buffer.from([0x18 | 3, 63])), 0, 'more than 120 ms: unreadable');
  t.equal(opusPacketSamples(Buffer.alloc(0)), 0);
});

t.test(
  'packets on the timeline: a gap filled with silent frames, a late packet dropped, muted packets silent',
  async (t) => {
    const { timeline: r, written, at } = timeline();
    r.begin(1000);
    const packets = () => oggPackets(Buffer.concat(written));
    t.same(
      packets().map((p) => p.subarray(0, 8).toString('latin1')),
      ['OpusHead', 'OpusTags'],
      'the headers first',
    );
    r.push(fixture.audio[0]!, 1000);
    r.push(fixture.audio[1]!, 1020);
    r.push(fixture.audio[4]!, 1080); // two lost
    t.equal(r.written, 5 * 960);
    t.same(
      packets()
        .slice(2)
        .map((p) => (p.equals(OPUS_SILENCE_20MS) ? 'silence' : 'live')),
      ['live', 'live', 'silence', 'silence', 'live'],
    );
    r.push(fixture.audio[2]!, 1040);
    t.equal(packets().length, 7, 'a late packet is dropped');
    r.muted = true;
    r.push(fixture.audio[5]!, 1100);
    t.ok(packets().at(-1)!.equals(OPUS_SILENCE_20MS), 'muted: silence in its place');
    t.equal(r.written, 6 * 960);
    r.muted = false;
    at(1500);
    // The thread's next tick finds the stall.
    const before = r.written;
    while (r.written === before) await new Promise((resolve) => setTimeout(resolve, 10));
    t.ok(
      r.written >= Math.floor((1500 - 60 - 1000) * 48) - 960,
      `a stall is filled with silence, keeping time (${r.written} samples)`,
    );
    r.close();
  },
);

t.test('a thread held past its tick: the packets that waited meanwhile are not taken for a stall', async (t) => {
  // A sender thread sends a packet every 20 ms over UDP, stamped with its capture time; this thread
  // is held for 300 ms meanwhile, as a process spawn on a busy machine holds it. Its overdue tick
  // runs before the socket is read.
  const socket = createSocket('udp4');
  t.teardown(() => socket.close());
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const written: Buffer[] = [];
  const r = new OpusTimeline({ write: (pages) => void written.push(pages) });
  t.teardown(() => r.close());
  const packets = 40;
  let received = 0;
  // As a push gets them: through its queue, served on the thread's next turn.
  const queue = new SinkQueue(
    { audio: (packet) => r.push(packet.payload, packet.captureMs), frame: () => {} },
    (error) => t.error(error),
  );
  socket.on('message', (message) => {
    const captureMs = message.readDoubleBE(0);
    if (received++ === 0) r.begin(captureMs);
    queue.audio({ payload: fixture.audio[received % fixture.audio.length]!, captureMs });
    // Held by other work after this read: what arrives meanwhile waits in the socket, and the
    // thread's next turn runs its timers first.
    if (received === 5)
      setImmediate(() => {
        const until = monotonicMs() + 300;
        while (monotonicMs() < until);
      });
  });
  const sender = new Worker(
    `const { workerData } = require('node:worker_threads');
    const socket = require('node:dgram').createSocket('udp4');
    const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;
    const startMs = Math.floor(now());
    let sent = 0;
    const timer = setInterval(() => {
      // Each packet is sent once its 20 ms have been captured, stamped with that time.
      while (sent < workerData.packets && now() >= startMs + sent * 20) {
        const message = Buffer.alloc(8);
        message.writeDoubleBE(startMs + sent++ * 20);
        socket.send(message, workerData.port, '127.0.0.1');
      }
      if (sent === workerData.packets) {
        clearInterval(timer);
        setTimeout(() => socket.close(), 100);
      }
    }, 5);`,
    { eval: true, workerData: { port: socket.address().port, packets } },
  );
  t.teardown(() => sender.terminate());
  await waitFor('every packet', () => received === packets && queue.size === 0, 10_000, 10);
  // Taken for a stall, the hold cost 11 of them (220 ms of sound). A sender thread itself held on a
  // busy machine may cost one or two.
  t.ok(r.dropped <= 2 * 960, `none dropped as late (${r.dropped / 960} packets)`);
  const silent = oggPackets(Buffer.concat(written))
    .slice(2)
    .filter((p) => p.equals(OPUS_SILENCE_20MS)).length;
  t.ok(silent <= 2, `no silence put in their place (${silent} silent frames)`);
});

t.test('ffmpeg reads the pages: every packet, checksums right, the timeline as written', async (t) => {
  const { timeline: r, written, at } = timeline();
  r.begin(1000);
  for (let i = 0; i < 100; i++) {
    at(1000 + i * 20);
    if (i < 40 || i >= 45) r.push(fixture.audio[i % fixture.audio.length]!, 1000 + i * 20);
  }
  r.close();
  const probe = spawnSync(
    'ffprobe',
    ['-v', 'error', '-f', 'ogg', '-i', 'pipe:0', '-show_entries', 'packet=pts', '-of', 'csv=p=0'],
    { input: Buffer.concat(written) },
  );
  t.equal(probe.stderr.toString(), '', 'no error (a bad checksum would be one)');
  const pts = probe.stdout.toString().trim().split('\n').map(Number);
  t.equal(pts.length, 100, 'a packet every 20 ms, the five lost ones filled');
  t.equal(pts.at(-1)! - pts[0]!, 99 * 960, 'on one unbroken timeline');
});

/**
 * Packets of a sender whose sound card runs `skew` off the gateway's clock for `seconds`, as the
 * clock mapping places them once it follows the sender (20 ms of sound every 20 / (1 + skew) ms).
 */
function drifting(skew: number, seconds: number) {
  const { timeline: r, written, at } = timeline();
  r.begin(1000);
  const count = Math.round((seconds * 1000 * (1 + skew)) / 20);
  for (let i = 0; i < count; i++) {
    const captureMs = 1000 + (i * 20) / (1 + skew);
    at(captureMs);
    r.push(fixture.audio[i % fixture.audio.length]!, captureMs);
  }
  r.close();
  return { timeline: r, ogg: Buffer.concat(written), count };
}

t.test(
  "a sender's sound card 0.5 % fast or slow for a minute: every packet relayed at its real time, and ffmpeg follows",
  async (t) => {
    for (const skew of [0.005, -0.005]) {
      const { timeline: r, ogg, count } = drifting(skew, 60);
      const pages = oggPackets(ogg).slice(2);
      t.equal(r.dropped, 0, `${skew * 100} %: no packet dropped`);
      t.equal(pages.filter((p) => p.equals(OPUS_SILENCE_20MS)).length, 0, `${skew * 100} %: no silence put in`);
      t.equal(pages.length, count, `${skew * 100} %: all ${count} packets written`);
      const endMs = (r.written / 48) | 0;
      t.ok(Math.abs(endMs - 60_000) <= 21, `${skew * 100} %: the granules end at the minute's end (${endMs} ms)`);
      // The push's own audio filter: the AAC it makes is as long as the gateway's clock says.
      const decoded = spawnSync(
        'ffmpeg',
        ['-v', 'error', '-c:a', 'libopus', '-f', 'ogg', '-i', 'pipe:0', '-af', OPUS_TIMING, '-f', 's16le', 'pipe:1'],
        { input: ogg, maxBuffer: 64 << 20 },
      );
      t.equal(decoded.stderr.toString(), '', `${skew * 100} %: ffmpeg read it without error`);
      const outMs = decoded.stdout.length / 4 / 48;
      t.ok(
        Math.abs(outMs - r.written / 48) <= 30,
        `${skew * 100} %: ffmpeg's sound ${outMs.toFixed(0)} ms long, its sender's ${count * 20} ms`,
      );
    }
  },
);
