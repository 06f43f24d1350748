import t from 'tap';
import { StartCache } from '../../src/publishers/fanout.js';
import type { AudioPacket, MediaSink, VideoFrame } from '../../src/media/sinks.js';

const frame = (tag: string, captureMs: number): VideoFrame => ({
  codec: 'H264',
  timestamp: captureMs * 90,
  captureMs,
  key: tag.startsWith('K'),
  packets: 1,
  bytes: tag.length,
  flv: Buffer.from(tag),
  bitstream: () => Buffer.from(tag),
});
const audio = (tag: string, captureMs: number): AudioPacket => ({ payload: Buffer.from(tag), captureMs });
const replayed = (cache: StartCache): string[] => {
  const out: string[] = [];
  const sink: MediaSink = { frame: (f) => out.push(f.flv!.toString()), audio: (p) => out.push(p.payload.toString()) };
  cache.replay(sink);
  return out;
};

t.test('a keyframe starts the cache: no start point before it, every frame since kept', async (t) => {
  const cache = new StartCache();
  cache.addFrame(frame('P0', 0));
  t.notOk(cache.keyframe, 'an inter frame cannot start a sink');
  t.same(replayed(cache), []);
  cache.addFrame(frame('K1', 33));
  t.ok(cache.keyframe);
  cache.addFrame(frame('P2', 66));
  t.same(replayed(cache), ['K1', 'P2']);
  t.equal(cache.keyframe?.captureMs, 33);
  cache.addFrame(frame('K3', 100));
  t.same(replayed(cache), ['K3'], 'a new keyframe replaces the group');
});

t.test('replay: the frames, then the audio captured since the keyframe, whenever it arrived', async (t) => {
  const cache = new StartCache();
  cache.addFrame(frame('K0', 0));
  cache.addFrame(frame('P1', 33));
  cache.addAudio(audio('A-old', 40));
  cache.addAudio(audio('A-early', 70)); // captured after K2, arrived before it
  cache.addFrame(frame('K2', 66));
  cache.addAudio(audio('A-late', 90));
  cache.addFrame(frame('P3', 100));
  t.same(replayed(cache), ['K2', 'P3', 'A-early', 'A-late']);
});

t.test('audio is kept back to the keyframe, and no further than 4 s while none is cached', async (t) => {
  const cache = new StartCache();
  for (let ms = 0; ms <= 10000; ms += 20) cache.addAudio(audio(`A${ms}`, ms));
  cache.addFrame(frame('K', 5000));
  const kept = replayed(cache);
  t.equal(kept[1], 'A6000', 'audio captured after the keyframe but more than 4 s before the last packet was dropped');
  t.equal(kept.at(-1), 'A10000');
  const cache2 = new StartCache();
  cache2.addFrame(frame('K', 0));
  for (let ms = 0; ms < 8000; ms += 20) cache2.addAudio(audio(`A${ms}`, ms));
  const out = replayed(cache2);
  t.equal(out.length, 1 + 400, 'a long group keeps its audio back to the keyframe');
  t.equal(out[1], 'A0');
});

t.test('a loss, a group too long, or clear: nothing to start from until the next keyframe', async (t) => {
  const cache = new StartCache();
  cache.addFrame(frame('K0', 0));
  cache.clear(false);
  t.notOk(cache.keyframe, 'after a loss');
  cache.addFrame(frame('P1', 33));
  t.notOk(cache.keyframe, 'an inter frame after the loss does not start a group');
  cache.addFrame(frame('K2', 66));
  for (let i = 1; i < 300; i++) cache.addFrame(frame(`P${i}`, 66 + i * 33));
  t.ok(cache.keyframe, '300 frames are kept');
  cache.addFrame(frame('P-more', 20000));
  t.notOk(cache.keyframe, 'the 301st drops the group');
  cache.addFrame(frame('K3', 20033));
  cache.addAudio(audio('A', 20040));
  cache.clear(true);
  t.notOk(cache.keyframe);
  t.same(replayed(cache), []);
});
