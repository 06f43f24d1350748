import t from 'tap';
import { OpusDecoder } from 'opus-decoder';
import { PcmTimeline, type SoundSource } from '../../src/audio/pcm-timeline.js';
import { interleave } from '../../src/audio/pcm.js';
import { testFixture } from '../helpers/synthetic.js';

// Real Opus packets (the fixture's 440 Hz tone, 20 ms each), decoded as a publisher decodes them,
// through the timeline, with a clock the test moves by hand.
const decoder = new OpusDecoder({ forceStereo: true });
await decoder.ready;
const pcm = testFixture()
  .audio.slice(0, 4)
  .map((packet) => {
    const { channelData, samplesDecoded } = decoder.decodeFrame(packet);
    return interleave(channelData, samplesDecoded);
  });
decoder.free();

async function timeline(): Promise<{ timeline: PcmTimeline; out: Int16Array[]; clock: { now: number } }> {
  const out: Int16Array[] = [];
  const clock = { now: 10_000 };
  const m = new PcmTimeline({
    write: (pcm) => void out.push(new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.length))),
    now: () => clock.now,
  });
  m.begin(10_000);
  t.teardown(() => m.close());
  return { timeline: m, out, clock };
}

const frames = (out: Int16Array[]): number => out.reduce((n, b) => n + b.length / 2, 0);
const peak = (b: Int16Array): number => b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

t.test('packets become one unbroken timeline: gaps are silence, late packets are dropped', async (t) => {
  const { timeline: m, out } = await timeline();
  m.pushPcm(pcm[0], 10_000);
  t.equal(frames(out), 960, 'a 20 ms packet is 960 frames');
  t.ok(peak(out[0]!.subarray(960)) > 1000, 'the tone is there');
  m.pushPcm(pcm[1], 10_040); // the packet at 10 020 was lost
  t.equal(frames(out), 960 * 3, 'the lost packet became 20 ms of silence');
  t.equal(peak(out[1]!), 0);
  m.pushPcm(pcm[2], 10_020); // arrives after its time was written
  t.equal(frames(out), 960 * 3, 'a late packet is dropped');
  t.equal(m.written, 960 * 3);
});

t.test('mute writes silence in the same time; a source is mixed at its volume and clipped', async (t) => {
  const { timeline: m, out } = await timeline();
  m.muted = true;
  m.pushPcm(pcm[0], 10_000);
  t.equal(peak(out[0]!), 0, 'muted: silence');
  const source: SoundSource = { volume: 0.5, take: (n) => new Int16Array(n * 2).fill(20_000) };
  m.source = source;
  m.pushPcm(pcm[1], 10_020);
  t.ok(
    out[1]!.every((v) => v === 10_000),
    'muted + source: only the source, at half volume',
  );
  m.muted = false;
  m.source = { volume: 1, take: (n) => new Int16Array(n * 2).fill(32_000) };
  m.pushPcm(pcm[2], 10_040);
  t.equal(Math.max(...out[2]!), 32_767, 'live + source is clipped, not wrapped');
  t.ok(Math.min(...out[2]!) < 32_000, 'the live tone is under the source');
  m.source = { volume: 1, take: (n) => new Int16Array(Math.min(n, 100) * 2).fill(5) };
  m.muted = true;
  m.pushPcm(pcm[3], 10_060);
  t.same(
    [out[3]![0], out[3]![199], out[3]![200]],
    [5, 5, 0],
    'a source that has fewer frames leaves silence after them',
  );
});

t.test('when live audio stops, silence keeps time moving; a packet over it is trimmed', async (t) => {
  const { timeline: m, out, clock } = await timeline();
  m.pushPcm(pcm[0], 10_000);
  clock.now = 10_500; // nothing for half a second
  const written = m.written;
  while (m.written === written) await new Promise((r) => setTimeout(r, 10)); // the thread's next tick
  t.equal(m.written, Math.floor((10_500 - 60 - 10_000) * 48), 'silence up to 60 ms before now');
  const before = m.written;
  m.pushPcm(pcm[1], 10_430); // overlaps the last 10 ms of that silence
  t.equal(m.written, before + 480, 'only its part after the silence is written');
  t.equal(frames(out), m.written);
});

t.test(
  "a sender's sound card 0.5 % fast or slow: each packet stretched or squeezed to its real time, none dropped",
  async (t) => {
    for (const skew of [0.005, -0.005]) {
      const { timeline: m, out, clock } = await timeline();
      const count = Math.round((60_000 * (1 + skew)) / 20);
      for (let i = 0; i < count; i++) {
        clock.now = 10_000 + (i * 20) / (1 + skew);
        m.pushPcm(pcm[i % pcm.length], clock.now);
      }
      t.equal(m.dropped, 0, `${skew * 100} %: no sound dropped`);
      const expected = (-count * 960 * skew) / (1 + skew);
      t.ok(Math.abs(m.stretched - expected) <= 960, `${skew * 100} %: stretched by ${m.stretched} frames in all`);
      t.ok(Math.abs(frames(out) - 60_000 * 48) <= 960, `${skew * 100} %: a minute of our clock (${frames(out)})`);
      // No 20 ms of silence anywhere: every block written carries the tone.
      t.equal(out.filter((b) => peak(b) < 1000).length, 0, `${skew * 100} %: no block of silence`);
    }
  },
);
