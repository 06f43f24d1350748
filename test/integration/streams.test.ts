import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { probe } from '../../kit/probe.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { syntheticPublish, testFixture } from '../helpers/synthetic.js';

// Web Call Server's stream API against a real WebRTC publisher (werift over WHIP, the 720p30
// fixture): what is published, with its figures and its pushes, and a snapshot decoded by
// ffmpeg, checked by ffprobe.

t.test('stream/find and find_all: codecs, size, frame rate, bitrate, since when, from where, its pushes', async (t) => {
  const { gw } = await syntheticPublish(t, {}, 'cam');
  const other = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'desk');
  t.teardown(() => other.stop());
  await sleep(2500); // a second of bitrate and a few frames
  const found = await gw.post('/rest-api/stream/find', { name: 'cam' });
  t.equal(found.status, 200, JSON.stringify(found.body));
  const cam = found.body[0];
  t.match(cam, {
    name: 'cam',
    id: String,
    state: 'publishing',
    video: { codec: 'H264', width: 1280, height: 720 },
    audio: { codec: 'opus' },
    clientAddress: '127.0.0.1',
    publishingSince: String,
    transponders: [],
    framesLost: 0,
  });
  t.ok(cam.video.frameRate > 27 && cam.video.frameRate < 33, `frame rate ${cam.video.frameRate}`);
  t.ok(cam.bitrateKbps > 1500 && cam.bitrateKbps < 4000, `bitrate ${cam.bitrateKbps} kb/s (the fixture is ~2.5 Mb/s)`);
  t.ok(cam.packets > 300 && cam.keyframes >= 1, `${cam.packets} packets, ${cam.keyframes} keyframes`);
  t.ok(
    cam.frames >= cam.keyframes && cam.frames < cam.packets,
    `${cam.frames} frames made whole, each of one or more packets`,
  );
  t.ok(
    cam.keyframeRequests >= 1,
    `${cam.keyframeRequests} keyframe requests (one each keyframe interval, and at the start)`,
  );
  t.equal(cam.nacksSent, 0, 'no retransmission asked for on loopback');
  t.equal(cam.packetsLost, 0, 'no packet lost on loopback');
  // Hop by hop: the engine's counts (read every 10 s) against the frame path's own.
  const hops = await waitFor(
    'the engine counted the stream, and the frame path has what it sent',
    async () => {
      const h = (await gw.post('/rest-api/stream/find', { name: 'cam' })).body[0].hops;
      return h && h.engineReceived > 300 && h.gatewayReceived >= h.engineSent ? h : undefined;
    },
    30_000,
    200,
  );
  t.equal(hops.engineLost, 0, 'nothing lost on the way to the engine');
  t.ok(
    hops.engineSent > 0 && hops.engineSent <= hops.engineReceived,
    `the engine sent on ${hops.engineSent} of ${hops.engineReceived} packets received (by its last count)`,
  );

  const destination = await RtmpReceiver.start();
  t.teardown(() => destination.close());
  const started = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: destination.url() });
  t.equal(started.status, 200);
  t.same(
    (await gw.post('/rest-api/stream/find', { name: 'cam' })).body[0].transponders,
    [started.body.mediaSessionId],
    'its push listed',
  );

  const all = await gw.post('/rest-api/stream/find_all', {});
  t.same(all.body.map((s: { name: string }) => s.name).sort(), ['cam', 'desk']);
  t.match(await gw.post('/rest-api/stream/find', { name: 'nobody' }), { status: 404, body: { error: 'not_found' } });
  t.match(await gw.post('/rest-api/stream/find', {}), { status: 400, body: { field: 'name' } });
  t.match(await gw.post('/rest-api/stream/find', { name: 'a b' }), { status: 400, body: { field: 'name' } });
});

t.test(
  "stream/snapshot: the latest keyframe as a JPEG of the stream's size; 404 for a stream not publishing",
  async (t) => {
    const { gw } = await syntheticPublish(t, {}, 'cam');
    await waitFor(
      'a keyframe',
      async () => (await gw.post('/rest-api/stream/find', { name: 'cam' })).body[0]?.keyframes > 0,
      5000,
    );
    const res = await fetch(`${gw.baseUrl}/rest-api/stream/snapshot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'cam' }),
    });
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'image/jpeg');
    const jpeg = Buffer.from(await res.arrayBuffer());
    t.same([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG');
    const dir = await mkdtemp(join(tmpdir(), 'snapshot-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'snapshot.jpg'), jpeg);
    const image = await probe(join(dir, 'snapshot.jpg'));
    t.match(image.streams[0], { codec_name: 'mjpeg', width: 1280, height: 720 }, 'ffprobe reads 1280x720');
    await waitFor("the snapshot's ffmpeg gone", () => gw.ffmpeg.count === 0, 3000);
    t.pass('no ffmpeg left');

    t.match(await gw.post('/rest-api/stream/snapshot', { name: 'nobody' }), {
      status: 404,
      body: { error: 'not_found' },
    });
    t.match(await gw.post('/rest-api/stream/snapshot', { name: '' }), { status: 400, body: { field: 'name' } });
  },
);

t.test(
  '100 concurrent snapshot requests: at most limit_snapshot_decoders ffmpeg at once, only 200 or 503, one decode per keyframe',
  async (t) => {
    const { gw } = await syntheticPublish(t, { limit_snapshot_decoders: 2, limit_snapshot_queue: 1 }, 'cam');
    const names = ['cam', 'desk', 'hall', 'yard'];
    for (const name of names.slice(1)) {
      const other = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, name);
      t.teardown(() => other.stop());
    }
    const keyframes = async (name: string): Promise<number> =>
      (await gw.post('/rest-api/stream/find', { name })).body[0]?.keyframes ?? 0;
    for (const name of names) await waitFor(`a keyframe of ${name}`, async () => (await keyframes(name)) > 0, 10_000);
    // Every ffmpeg the gateway starts is counted as it starts and as it ends.
    let running = 0;
    let peak = 0;
    let started = 0;
    const spawn = gw.ffmpeg.spawn.bind(gw.ffmpeg);
    gw.ffmpeg.spawn = (...args: Parameters<typeof spawn>) => {
      const child = spawn(...args);
      started++;
      peak = Math.max(peak, ++running);
      void child.exited.then(() => running--);
      return child;
    };
    // A new keyframe during the burst makes a new picture due: decodes are bounded by the keyframes seen.
    const before = await Promise.all(names.map(keyframes));
    const answers = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const res = await fetch(`${gw.baseUrl}/rest-api/stream/snapshot`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: names[i % names.length] }),
        });
        const body = Buffer.from(await res.arrayBuffer());
        return {
          status: res.status,
          retryAfter: res.headers.get('retry-after'),
          jpeg: body[0] === 0xff && body[1] === 0xd8,
        };
      }),
    );
    const statuses = new Set(answers.map((a) => a.status));
    t.same(
      [...statuses].filter((s) => s !== 200 && s !== 503),
      [],
      `only 200 and 503: ${[...statuses].join(', ')}`,
    );
    t.ok(
      answers.filter((a) => a.status === 200).every((a) => a.jpeg),
      'every 200 is a JPEG',
    );
    t.ok(
      answers.filter((a) => a.status === 503).every((a) => Number(a.retryAfter) >= 1),
      'every 503 says when to try again',
    );
    t.ok(
      answers.some((a) => a.status === 200),
      `${answers.filter((a) => a.status === 200).length} pictures`,
    );
    t.ok(peak <= 2, `at most 2 ffmpeg at once (${peak})`);
    const after = await Promise.all(names.map(keyframes));
    const pictures = names.reduce((sum, _, i) => sum + after[i]! - before[i]! + 1, 0);
    t.ok(
      started <= pictures,
      `${started} decodes for ${names.length} streams, ${pictures} keyframes among them: requests for one keyframe share one decode`,
    );

    // Asked again before the stream's next keyframe: the same picture, no new decode.
    let reused = false;
    for (let attempt = 0; attempt < 20 && !reused; attempt++) {
      const before = await keyframes('cam');
      const first = await gw.post('/rest-api/stream/snapshot', { name: 'cam' });
      const count = started;
      const again = await gw.post('/rest-api/stream/snapshot', { name: 'cam' });
      if ((await keyframes('cam')) !== before) continue; // a keyframe came in between: a new picture is due
      t.equal(first.status, 200);
      t.equal(again.status, 200);
      t.equal(started, count, 'the second request decoded nothing');
      reused = true;
    }
    t.ok(reused, 'two requests fell within one keyframe');
    await waitFor('every snapshot ffmpeg gone', () => gw.ffmpeg.count === 0, 10_000);
  },
);
