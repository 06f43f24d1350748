import t, { type Test } from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { nonMonotonic, probe } from '../../kit/probe.js';
import { median } from '../../kit/stats.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { awaitPushState, keyframeCached } from '../helpers/pushes.js';
import { syntheticPublish, testFixture } from '../helpers/synthetic.js';
import { ffmpegCount, IN_WORKERS } from '../helpers/gateway.js';

// A publisher that goes away (its page closed: no WHIP DELETE, the connection just ends): its
// push holds the RTMP session with the last picture and silence, and goes live again when
// the stream is published again; after the grace period it ends. Real components: a werift
// publisher over WHIP, the gateway, nginx-rtmp recording what arrived, ffprobe.

/** How long a silent publisher takes to count as lost, here. */
const MEDIA_TIMEOUT_MS = 2000;

async function pushToNginx(t: Test, name: string, graceMs: number) {
  const nginx = await NginxRtmp.start({ recordUnique: true });
  t.teardown(() => nginx.stop());
  const { gw, publisher } = await syntheticPublish(
    t,
    { ...IN_WORKERS, rtmp_push_publisher_grace_ms: graceMs, webrtc_media_timeout_ms: MEDIA_TIMEOUT_MS },
    name,
  );
  await keyframeCached(gw, name);
  const res = await gw.post('/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
  t.equal(res.status, 200, JSON.stringify(res.body));
  return { nginx, gw, publisher, id: res.body.mediaSessionId as string };
}

/** ffmpeg processes are stopped after a push is unlisted: they are all gone soon after. */
async function noFfmpegLeft(t: Test): Promise<void> {
  await waitFor('every ffmpeg to end', async () => (await ffmpegCount()) === 0, 5000);
  t.pass('no ffmpeg left');
}

type Packets = Awaited<ReturnType<typeof probe>>['video'];

/** Gaps between consecutive packets, in seconds, each with the time it starts at. */
function gaps(packets: Packets): { at: number; gap: number }[] {
  const times = packets.map((p) => Number(p.pts_time));
  return times.slice(1).map((time, i) => ({ at: times[i]!, gap: time - times[i]! }));
}

/** Median size of the frames that are not keyframes among `packets`. */
function interFrameSize(packets: Packets): number {
  return median(packets.filter((p) => !p.flags.startsWith('K')).map((p) => Number(p.size)));
}

t.test(
  'a lost publisher: standby with a still picture, live again when it comes back, in one RTMP session',
  async (t) => {
    const { nginx, gw, publisher, id } = await pushToNginx(t, 'cam', 30000);
    // A transcoded push of the same stream too: its pipeline is replaced the same way.
    const transcoded = await gw.post('/rest-api/push/startup', {
      streamName: 'cam',
      rtmpUrl: `${nginx.url()}/cam360`,
      rtmpTransponderFullUrl: true,
      height: 360,
    });
    t.equal(transcoded.status, 200, JSON.stringify(transcoded.body));
    await sleep(2000);
    const lostAt = Date.now();
    await publisher.vanish();
    const standby = await awaitPushState(gw, 'cam', 'standby', [], MEDIA_TIMEOUT_MS + 3000);
    t.comment(`standby ${Date.now() - lostAt} ms after the publisher went silent`);
    t.match(standby, {
      mediaSessionId: id,
      lastError: /publisher lost: no media from the publisher/,
      standbyUntil: String,
    });
    t.match(await gw.post('/rest-api/push/find', { streamName: 'cam' }), {
      body: [{ state: 'standby' }, { state: 'standby', transcoding: true }],
    });
    await waitFor('one ffmpeg per push: the still picture and silence', async () => (await ffmpegCount()) === 2, 5000);
    await sleep(3000);
    const back = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam');
    t.teardown(() => back.stop());
    const live = await awaitPushState(gw, 'cam', 'running', [], 10000);
    t.equal(live.mediaSessionId, id, 'the same push');
    await waitFor(
      'both running',
      async () =>
        (await gw.post('/rest-api/push/find', { streamName: 'cam' })).body.every((x: any) => x.state === 'running'),
      10000,
    );
    await sleep(3000);
    await gw.post('/rest-api/push/terminate', { mediaSessionId: id });
    await gw.post('/rest-api/push/terminate', { mediaSessionId: transcoded.body.mediaSessionId });
    await noFfmpegLeft(t);

    for (const stream of ['rtmp_cam', 'cam360']) {
      t.test(stream, async (t) => {
        const recordings = await nginx.recordings(stream);
        t.equal(recordings.length, 1, 'one RTMP session throughout');
        const rec = await probe(recordings[0]!);
        t.same(nonMonotonic(rec.video), [], 'video timestamps increase');
        t.same(nonMonotonic(rec.audio), [], 'audio timestamps increase');
        // Video stops while the silent publisher is not yet known to be lost; from then on the still
        // picture, then live video again, without a break.
        const videoGaps = gaps(rec.video);
        const longest = videoGaps.reduce((a, b) => (b.gap > a.gap ? b : a));
        t.ok(
          longest.gap <= MEDIA_TIMEOUT_MS / 1000 + 1.5,
          `video paused ${longest.gap.toFixed(2)} s while the loss went unnoticed`,
        );
        const after = videoGaps.filter((g) => g.at > longest.at);
        t.ok(after.length >= 100, `${after.length} frames after it: the still picture, then live video`);
        const breaks = after.filter((g) => g.gap >= 0.5).map((g) => `${g.gap.toFixed(2)} s at ${g.at.toFixed(2)} s`);
        t.same(
          breaks,
          [],
          `no break after that, through standby and back to live (video from ${longest.at.toFixed(2)} s)`,
        );
        // Passed through, audio never stops. Transcoded, ffmpeg holds audio back while the video it
        // waits for is missing, until the loss is noticed.
        const audioGaps = gaps(rec.audio);
        const audioGap = audioGaps.reduce((a, b) => (b.gap > a.gap ? b : a));
        if (stream === 'rtmp_cam')
          t.ok(audioGap.gap < 0.5, `audio throughout: largest gap ${audioGap.gap.toFixed(3)} s`);
        else t.ok(audioGap.gap <= longest.gap + 0.2, `audio paused ${audioGap.gap.toFixed(3)} s with the video`);
        const audioAfter = audioGaps
          .filter((g) => g.at > longest.at + longest.gap)
          .reduce((a, b) => (b.gap > a.gap ? b : a));
        // The still picture's sound goes on until the live sound's first frame, transcoded too.
        t.ok(
          audioAfter.gap < 0.1,
          `then audio throughout, silence while the publisher was away: largest gap ${audioAfter.gap.toFixed(3)} s ` +
            `at ${audioAfter.at.toFixed(2)} s`,
        );
        const stillStart = rec.video.find((p) => Number(p.pts_time) > longest.at)!;
        t.ok(stillStart.flags.startsWith('K'), 'the still picture starts with a keyframe');
        const before = rec.video.filter((p) => Number(p.pts_time) < longest.at);
        const stillAt = Number(stillStart.pts_time);
        const still = rec.video.filter((p) => Number(p.pts_time) > stillAt && Number(p.pts_time) < stillAt + 2.5);
        t.ok(
          interFrameSize(still) * 5 < interFrameSize(before),
          `a still picture: frames of ${interFrameSize(still)} bytes against ${interFrameSize(before)} live`,
        );
      });
    }
  },
);

t.test('after the grace period the push ends; 0 ends it at once', async (t) => {
  for (const graceMs of [1500, 0]) {
    await t.test(`grace ${graceMs} ms`, async (t) => {
      const { nginx, gw, publisher, id } = await pushToNginx(t, 'gone', graceMs);
      await sleep(1000);
      await publisher.vanish();
      if (graceMs) await awaitPushState(gw, 'gone', 'standby', [], MEDIA_TIMEOUT_MS + 3000);
      const standbyAt = Date.now();
      await waitFor(
        'the push to end',
        async () => (await gw.post('/rest-api/push/find', { streamName: 'gone' })).status === 404,
        MEDIA_TIMEOUT_MS + graceMs + 3000,
      );
      if (graceMs)
        t.ok(Date.now() - standbyAt >= graceMs - 200, `ended ${Date.now() - standbyAt} ms after standby began`);
      t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 404, 'not listed');
      await waitFor('nginx to lose the stream', async () => (await nginx.streams()).length === 0, 5000);
      await noFfmpegLeft(t);
    });
  }
});

t.test(
  'a publisher that ends on purpose (WHIP DELETE) ends its pushes at once, whatever the grace period',
  async (t) => {
    const { nginx, gw, publisher } = await pushToNginx(t, 'bye', 30000);
    await sleep(1000);
    await publisher.stop();
    await waitFor(
      'the push to end',
      async () => (await gw.post('/rest-api/push/find', { streamName: 'bye' })).status === 404,
      3000,
    );
    await waitFor('nginx to lose the stream', async () => (await nginx.streams()).length === 0, 5000);
    await noFfmpegLeft(t);
  },
);
