import t, { type Test } from 'tap';
import { OpusStage } from '../../src/publishers/opus-stage.js';
import { testFixture } from '../helpers/synthetic.js';
import type { AudioPacket } from '../../src/media/sinks.js';

// A publisher's Opus decoded once for all its pushes, in time order.

const opus = testFixture().audio;
const packet = (i: number): AudioPacket => ({ payload: opus[i]!, captureMs: i * 20 });

async function readyStage(t: Test): Promise<OpusStage> {
  const stage = new OpusStage();
  t.teardown(() => stage.close());
  const probe = packet(0);
  const deadline = Date.now() + 5000;
  while (!stage.pcm(probe) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  return stage;
}

t.test('each packet is decoded once: every push gets the same samples', async (t) => {
  const stage = await readyStage(t);
  const p = packet(1);
  const first = stage.pcm(p);
  t.ok(first, 'decoded');
  t.equal(first!.length, 960 * 2, '20 ms of interleaved stereo at 48 kHz');
  t.equal(stage.pcm(p), first, 'asked again (another push): the very same samples');
  t.ok(
    first!.some((v) => Math.abs(v) > 1000),
    "the fixture's tone, not silence",
  );
});

t.test('a packet older than the last decoded is not decoded any more (decoding keeps order)', async (t) => {
  const stage = await readyStage(t);
  const older = packet(1);
  const newer = packet(2);
  t.ok(stage.pcm(newer), 'the newer one is decoded first');
  t.equal(stage.pcm(older), undefined, 'the older one is not: its pushes take it as lost');
});

t.test('nothing before the decoder is ready, nothing after close', async (t) => {
  const stage = new OpusStage();
  const p = packet(1);
  t.equal(stage.pcm(p), undefined, 'not ready yet');
  stage.close();
  const q = packet(2);
  t.equal(stage.pcm(q), undefined, 'closed');
});
