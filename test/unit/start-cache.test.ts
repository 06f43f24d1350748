import t from 'tap';
import { StartCache, type CachedPacket } from '../../src/publishers/start-cache.js';

const packet = (kind: CachedPacket['kind'], timestamp: number, tag: string): CachedPacket => ({
  kind,
  rtp: Buffer.from(tag),
  sequenceNumber: 0,
  timestamp,
  marker: false,
  payload: Buffer.alloc(0),
});
const video = (timestamp: number, tag: string): CachedPacket => packet('video', timestamp, tag);
const audio = (timestamp: number, tag: string): CachedPacket => packet('audio', timestamp, tag);
const replayed = (cache: StartCache): string[] => {
  const out: string[] = [];
  cache.replay((p) => out.push(p.rtp.toString()));
  return out;
};

t.test('the stream\'s first keyframe has no frame before it and is not a start point', async (t) => {
  const cache = new StartCache();
  t.ok(cache.addVideo(video(0, 'K0a'), true, 0), 'a new keyframe');
  t.notOk(cache.addVideo(video(0, 'K0b'), false, 0), 'another packet of the same keyframe');
  t.notOk(cache.ready);
  cache.addVideo(video(3000, 'K1'), true, 33);
  t.notOk(cache.ready, 'the frame before is itself a keyframe');
  cache.addVideo(video(6000, 'P2'), false, 66);
  cache.addVideo(video(9000, 'K3'), true, 100);
  t.ok(cache.ready);
  t.same(replayed(cache), ['P2', 'K3']);
});

t.test('replay: the frame before the keyframe, audio captured with it, then everything since', async (t) => {
  const cache = new StartCache();
  cache.addVideo(video(0, 'K0'), true, 0);
  cache.addVideo(video(3000, 'P1'), false, 33);
  cache.addAudio(audio(100, 'A-old'), 40);
  cache.addAudio(audio(200, 'A-early'), 70);
  cache.addVideo(video(6000, 'K2'), true, 66);
  cache.addAudio(audio(300, 'A-late'), 90);
  cache.addVideo(video(9000, 'P3'), false, 100);
  t.same(replayed(cache), ['P1', 'A-early', 'K2', 'A-late', 'P3']);
  t.equal(cache.keyframeWallclockMs, 66);
});

t.test('clear forgets everything', async (t) => {
  const cache = new StartCache();
  cache.addVideo(video(0, 'P0'), false, 0);
  cache.addVideo(video(3000, 'K1'), true, 33);
  t.ok(cache.ready);
  cache.clear();
  t.notOk(cache.ready);
  t.same(replayed(cache), []);
});
