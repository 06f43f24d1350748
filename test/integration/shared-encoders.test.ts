import t, { type Test } from 'tap';
import { decodePicture } from '../../kit/pictures.js';
import { probe } from '../../kit/probe.js';
import { childPids, now, sleep, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import type { TestGateway } from '../helpers/gateway.js';
import { syntheticPublish } from '../helpers/synthetic.js';
import { bandLevels, runs } from '../helpers/tones.js';

// The publisher sends a 440 Hz tone (the fixture's Opus) and a 1280x720 picture. Pushes of one
// stream that hear the same audio share one AAC encoder (one ffmpeg), and pushes of one transcoded
// rendition one video encoder; a push that mutes gets its own, and the others go on.

const LIVE_HZ = 440;
const PRESENT_DB = -40;

const nginx = await NginxRtmp.start();
t.teardown(() => nginx.stop());

const ffmpegs = (): Promise<number[]> => childPids(process.pid, 'ffmpeg');

/** Starts a push of `streamName` to nginx-rtmp's stream `name`: its mediaSessionId. */
async function startPush(
  t: Test,
  gw: TestGateway,
  streamName: string,
  name: string,
  body: object = {},
): Promise<string> {
  const res = await gw.post('/rest-api/push/startup', {
    streamName,
    rtmpUrl: `${nginx.url()}/${name}`,
    rtmpTransponderFullUrl: true,
    ...body,
  });
  t.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.mediaSessionId as string;
}

t.test(
  'a push joining a running AAC encoder mid-GOP: its sound starts with its first picture, the keyframe before',
  async (t) => {
    const { gw, publisher } = await syntheticPublish(t, {}, 'joining');
    const push = (name: string): Promise<string> => startPush(t, gw, 'joining', name);
    const first = await push('join-1');
    await waitFor('the first push sending', () => gw.pushService.get(first).writer.frames >= 30, 20_000);
    // The keyframe the second push starts at was sent 0.7 to 1.3 s before it joined.
    const keyframeAge = (): number => now() - publisher.frames.findLast((f) => f.key)!.sentAt;
    await waitFor('mid-GOP', () => keyframeAge() >= 700 && keyframeAge() <= 1300, 20_000, 5);
    const second = await push('join-2');
    t.equal((await ffmpegs()).length, 1, 'one encoder for both');
    await waitFor('the second push sending', () => gw.pushService.get(second).writer.frames >= 60, 20_000);
    for (const id of [first, second])
      t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
    await waitFor('the recordings to be closed', async () => (await nginx.streams()).length === 0);
    const media = await probe(nginx.recording('join-2')!);
    const [video, audio] = [media.video[0], media.audio[0]].map((p) => Number(p?.pts_time));
    t.ok(
      Math.abs(audio! - video!) < 0.1,
      `the second push's first sound at ${audio} s, its first picture at ${video} s`,
    );
  },
);

t.test(
  'pushes of one stream share one AAC encoder; one that mutes gets its own and the others are not muted',
  async (t) => {
    const { gw } = await syntheticPublish(t, {}, 'shared');
    const push = (name: string): Promise<string> => startPush(t, gw, 'shared', name);
    const a = await push('a');
    const b = await push('b');
    const c = await push('c');
    await waitFor('the three streams at nginx-rtmp', async () => {
      const names = new Set((await nginx.streams()).map((s) => s.name));
      return ['a', 'b', 'c'].every((name) => names.has(name));
    });
    t.equal((await ffmpegs()).length, 1, 'three pushes, one ffmpeg');

    await sleep(1500);
    const mutedAt = Date.now();
    t.equal((await gw.post('/rest-api/push/mute', { mediaSessionId: a })).status, 200);
    // A gets an encoder of its own; B and C go on sharing theirs.
    await waitFor('a second ffmpeg', async () => (await ffmpegs()).length === 2);
    await sleep(2000);
    const unmutedAt = Date.now();
    t.equal((await gw.post('/rest-api/push/unmute', { mediaSessionId: a })).status, 200);
    await sleep(1500);
    // Terminating one push of two leaves the encoder to the other; terminating it too ends it.
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: b })).status, 200);
    t.equal((await ffmpegs()).length, 2, 'the shared encoder goes on for the push still on it');
    await sleep(500);
    const clients = new Map((await nginx.streams()).map((s) => [s.name, s.clientId]));
    for (const id of [a, c]) t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
    await waitFor('every ffmpeg ended', async () => (await ffmpegs()).length === 0);
    await waitFor('the recordings to be closed', async () => (await nginx.streams()).length === 0);
    t.equal(clients.size, 2, 'a and c were still publishing on their first connections');

    const [recA, recB, recC] = ['a', 'b', 'c'].map((name) => nginx.recording(name));
    for (const file of [recA!, recB!, recC!]) {
      const media = await probe(file);
      t.equal(media.streams.find((s) => s.codec_type === 'audio')?.codec_name, 'aac', `${file}: AAC`);
      const gaps = media.audio.map((p, i, all) => (i ? Number(p.pts_time) - Number(all[i - 1]!.pts_time) : 0));
      t.ok(Math.max(...gaps) < 0.1, `${file}: no gap in the audio (largest ${Math.max(...gaps).toFixed(3)} s)`);
    }
    const on = async (file: string): Promise<Array<[number, number]>> =>
      runs(await bandLevels(file, LIVE_HZ), (db) => db > PRESENT_DB, 0.1).filter(([from, to]) => to - from > 0.25);
    const [onA, onB, onC] = await Promise.all([on(recA!), on(recB!), on(recC!)]);
    t.comment(`tone in a ${JSON.stringify(onA)}, b ${JSON.stringify(onB)}, c ${JSON.stringify(onC)}`);
    t.equal(onA.length, 2, 'a: the tone stops once (mute) and comes back once (unmute)');
    const silentS = onA.length === 2 ? onA[1]![0] - onA[0]![1] : NaN;
    const askedS = (unmutedAt - mutedAt) / 1000;
    t.ok(
      silentS > askedS - 0.5 && silentS < askedS + 0.3,
      `a: muted for ${silentS.toFixed(2)} s, asked ${askedS.toFixed(2)} s`,
    );
    t.equal(onB.length, 1, 'b: the tone throughout');
    t.equal(onC.length, 1, 'c: the tone throughout');
  },
);

t.test(
  'a push alone on its encoder mutes it in place; the next push of the stream gets a new shared one',
  async (t) => {
    const { gw } = await syntheticPublish(t, {}, 'alone');
    const start = (name: string): Promise<string> => startPush(t, gw, 'alone', name);
    const first = await start('alone-1');
    const before = await ffmpegs();
    t.equal(before.length, 1);
    t.equal((await gw.post('/rest-api/push/mute', { mediaSessionId: first })).status, 200);
    t.same(await ffmpegs(), before, 'muted in place: the same ffmpeg, none started');
    const second = await start('alone-2');
    t.equal((await ffmpegs()).length, 2, 'the muted encoder is not shared: the next push has one of its own');
    for (const id of [first, second])
      t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
    await waitFor('every ffmpeg ended', async () => (await ffmpegs()).length === 0);
  },
);

t.test("the shared encoder lost is every sharing push's loss: each restores, and they share again", async (t) => {
  const { gw } = await syntheticPublish(t, {}, 'lost');
  const ids: string[] = [];
  for (const name of ['lost-1', 'lost-2']) ids.push(await startPush(t, gw, 'lost', name));
  const [shared] = await ffmpegs();
  t.ok(shared, 'one ffmpeg');
  process.kill(shared!, 'SIGKILL');
  const pushes = async (): Promise<Array<{ state: string; counters: { drops: number } }>> =>
    (await gw.post('/rest-api/push/find', { streamName: 'lost' })).body;
  await waitFor('both pushes to have dropped and be running again', async () => {
    const all = await pushes();
    return all.length === 2 && all.every((p) => p.state === 'running' && p.counters.drops === 1);
  });
  const now = await ffmpegs();
  t.equal(now.length, 1, 'one new ffmpeg for both');
  t.not(now[0], shared);
  for (const id of ids) t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
  await waitFor('every ffmpeg ended', async () => (await ffmpegs()).length === 0);
});

t.test(
  'pushes of one rendition share one ffmpeg, a late one starting at its keyframe; one that mutes gets its own, video unbroken',
  async (t) => {
    const { gw } = await syntheticPublish(t, {}, 'rendition');
    const push = (name: string, height: number): Promise<string> => startPush(t, gw, 'rendition', name, { height });
    const recorded = (name: string, packets: number): Promise<unknown> =>
      waitFor(
        `${packets} frames of ${name} recorded`,
        async () => ((await probe(nginx.recording(name)).catch(() => undefined))?.video.length ?? 0) >= packets,
        30_000,
        250,
      );
    const a = await push('r-a', 360);
    await recorded('r-a', 45);
    t.equal((await ffmpegs()).length, 1);
    // Mid-GOP of the encoder a started: b joins it.
    const b = await push('r-b', 360);
    const c = await push('r-c', 240);
    await recorded('r-b', 30);
    t.equal((await ffmpegs()).length, 2, 'three pushes, two renditions, two ffmpegs');

    const mutedAt = Date.now();
    t.equal((await gw.post('/rest-api/push/mute', { mediaSessionId: b })).status, 200);
    await waitFor('an ffmpeg of its own for the muted push', async () => (await ffmpegs()).length === 3);
    await sleep(2000);
    const mutedFor = (Date.now() - mutedAt) / 1000;
    for (const id of [a, b, c])
      t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
    await waitFor('every ffmpeg ended', async () => (await ffmpegs()).length === 0);
    await waitFor('the recordings to be closed', async () => (await nginx.streams()).length === 0);

    for (const [name, height] of [
      ['r-a', 360],
      ['r-b', 360],
      ['r-c', 240],
    ] as const) {
      const file = nginx.recording(name);
      const media = await probe(file);
      t.match(
        media.streams.find((s) => s.codec_type === 'video'),
        { codec_name: 'h264', height },
        `${name}: H.264, ${height} high`,
      );
      t.match(media.video[0]?.flags, /^K/, `${name}: starts with a keyframe`);
      const times = media.video.map((p) => Number(p.pts_time));
      const gap = Math.max(...times.map((time, i) => (i ? time - times[i - 1]! : 0)));
      t.ok(gap < 0.2, `${name}: no gap in the video (largest ${gap.toFixed(3)} s)`);
      t.equal((await decodePicture(file)).height, height, `${name}: decodes`);
    }
    const onA = runs(await bandLevels(nginx.recording('r-a'), LIVE_HZ), (db) => db > PRESENT_DB, 0.1).filter(
      ([from, to]) => to - from > 0.25,
    );
    const onB = runs(await bandLevels(nginx.recording('r-b'), LIVE_HZ), (db) => db > PRESENT_DB, 0.1).filter(
      ([from, to]) => to - from > 0.25,
    );
    t.equal(onA.length, 1, `r-a: the tone throughout (${JSON.stringify(onA)})`);
    const bDuration = Number((await probe(nginx.recording('r-b'))).audio.at(-1)?.pts_time);
    t.equal(onB.length, 1, `r-b: the tone once, then silence (${JSON.stringify(onB)})`);
    t.ok(
      bDuration - (onB[0]?.[1] ?? bDuration) > mutedFor - 1,
      `r-b: silent for its last ${(bDuration - (onB[0]?.[1] ?? 0)).toFixed(2)} s, muted ${mutedFor.toFixed(2)} s`,
    );
  },
);
