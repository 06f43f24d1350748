import t from 'tap';
import { StartCache, type CachedPacket } from '../../src/publishers/start-cache.js';

const packet = (kind: CachedPacket['kind'], timestamp: number, tag: string, wallclockMs: number): CachedPacket => ({
  kind,
  wallclockMs,
  sequenceNumber: 0,
  timestamp,
  marker: false,
  payload: Buffer.from(tag),
});
const video = (timestamp: number, tag: string, wallclockMs: number): CachedPacket => packet('video', timestamp, tag, wallclockMs);
const audio = (timestamp: number, tag: string, wallclockMs: number): CachedPacket => packet('audio', timestamp, tag, wallclockMs);
const replayed = (cache: StartCache): string[] => {
  const out: string[] = [];
  cache.replay((p) => out.push(p.payload.toString()));
  return out;
};

t.test('the stream\'s first keyframe has no frame before it and is not a start point', async (t) => {
  const cache = new StartCache();
  t.ok(cache.addVideo(video(0, 'K0a', 0), true), 'a new keyframe');
  t.notOk(cache.addVideo(video(0, 'K0b', 0), false), 'another packet of the same keyframe');
  t.notOk(cache.ready);
  cache.addVideo(video(3000, 'K1', 33), true);
  t.notOk(cache.ready, 'the frame before is itself a keyframe');
  cache.addVideo(video(6000, 'P2', 66), false);
  cache.addVideo(video(9000, 'K3', 100), true);
  t.ok(cache.ready);
  t.same(replayed(cache), ['P2', 'K3']);
});

t.test('replay: the frame before the keyframe, audio captured with it, then everything since', async (t) => {
  const cache = new StartCache();
  cache.addVideo(video(0, 'K0', 0), true);
  cache.addVideo(video(3000, 'P1', 33), false);
  cache.addAudio(audio(100, 'A-old', 40));
  cache.addAudio(audio(200, 'A-early', 70));
  cache.addVideo(video(6000, 'K2', 66), true);
  cache.addAudio(audio(300, 'A-late', 90));
  cache.addVideo(video(9000, 'P3', 100), false);
  t.same(replayed(cache), ['P1', 'A-early', 'K2', 'A-late', 'P3']);
  t.equal(cache.keyframeWallclockMs, 66);
});

t.test('clear forgets everything', async (t) => {
  const cache = new StartCache();
  cache.addVideo(video(0, 'P0', 0), false);
  cache.addVideo(video(3000, 'K1', 33), true);
  t.ok(cache.ready);
  cache.clear();
  t.notOk(cache.ready);
  t.same(replayed(cache), []);
});
