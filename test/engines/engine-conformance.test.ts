import t from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { isAlive, waitFor } from '../../kit/processes.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../../kit/rtmp-receiver.js';
import { chromiumOffer } from '../helpers/offers.js';
import { startGateway } from '../helpers/gateway.js';
import { awaitPushState, keyframeCached } from '../helpers/pushes.js';
import { testFixture } from '../helpers/synthetic.js';

// The same behaviour from both WebRTC engines: a WHIP publish, its media pushed to an RTMP server,
// keyframes on request, lost packets asked for again, a malformed offer refused naming it, a
// session that never connects closed, a publisher that vanishes told lost. mediasoup alone: a
// worker process that dies is replaced. mediasoup runs it with both ways its RTP reaches the
// gateway (webrtc_mediasoup_rtp_handoff). Chromium publishing to both: chromium-engines.test.ts.

const SETUPS = [
  { name: 'mediasoup, RTP over loopback UDP (plain)', engine: 'mediasoup', handoff: 'plain' },
  { name: 'mediasoup, RTP over the worker channel (direct)', engine: 'mediasoup', handoff: 'direct' },
  { name: 'werift', engine: 'werift' },
] as const;

for (const setup of SETUPS) {
  const { engine } = setup;
  const engineConfig = {
    webrtc_engine: engine,
    ...('handoff' in setup ? { webrtc_mediasoup_rtp_handoff: setup.handoff } : {}),
  };
  t.test(setup.name, async (t) => {
    const gw = await startGateway({ ...engineConfig, webrtc_connect_timeout_ms: 2000, webrtc_media_timeout_ms: 2000 });
    t.teardown(() => gw.close());
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());

    await t.test('a WHIP publish, pushed: H.264 and AAC arrive, a keyframe first', async (t) => {
      const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam');
      t.teardown(() => publisher.stop());
      await keyframeCached(gw, 'cam');
      const media: RtmpMediaMessage[] = [];
      const onMedia = (m: RtmpMediaMessage): void => void media.push(m);
      receiver.on('media', onMedia);
      t.teardown(() => receiver.off('media', onMedia));
      const started = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: receiver.url() });
      t.equal(started.status, 200, JSON.stringify(started.body));
      await waitFor(
        'video and audio at the RTMP server',
        () =>
          media.filter((m) => m.kind === 'video').length > 60 &&
          media.some((m) => m.kind === 'audio' && !m.sequenceHeader),
        20000,
      );
      const video = media.filter((m) => m.kind === 'video');
      t.ok(video[0]!.sequenceHeader, 'the AVC sequence header first');
      t.ok(video[1]!.key, 'then a keyframe');
      const stream = (await gw.post('/rest-api/stream/find', { name: 'cam' })).body[0];
      t.match(stream, { video: { codec: 'H264', width: 1280, height: 720 }, audio: { codec: 'opus' }, framesLost: 0 });
      const requests = stream.keyframeRequests as number;
      const keyframes = stream.keyframes as number;
      gw.publishers.get('cam')!.requestKeyframe(true);
      await waitFor(
        'a keyframe answering the request',
        async () => (await gw.post('/rest-api/stream/find', { name: 'cam' })).body[0].keyframes > keyframes,
        10000,
      );
      t.ok(
        (await gw.post('/rest-api/stream/find', { name: 'cam' })).body[0].keyframeRequests > requests,
        'the request was counted',
      );
      t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId })).status, 200);
    });

    await t.test('lost video packets are asked for again (NACK) and no frame is lost', async (t) => {
      const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'lossy', {
        loseOneVideoPacketIn: 40,
      });
      t.teardown(() => publisher.stop());
      await keyframeCached(gw, 'lossy');
      await waitFor('20 lost packets sent again', () => publisher.videoLoss.resent >= 20, 20000);
      // mediasoup's NACK count is read from it every 10 s (`STATS_INTERVAL_MS`); werift counts as it goes.
      const stream = await waitFor(
        'the NACKs counted',
        async () => {
          const found = (await gw.post('/rest-api/stream/find', { name: 'lossy' })).body[0];
          return found.nacksSent > 0 ? (found as Record<string, number>) : undefined;
        },
        20000,
      );
      t.ok(stream.nacksSent! > 0, `${stream.nacksSent} NACKs sent for ${publisher.videoLoss.lost} packets lost`);
      t.equal(stream.framesLost, 0, 'every frame completed by the packets sent again');
    });

    await t.test('a malformed offer is a 400 naming the offer; nothing is left', async (t) => {
      const bad = chromiumOffer().replace(/a=fingerprint:.*\r\n/g, '');
      const res = await fetch(`${gw.baseUrl}/whip/bad`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: bad,
      });
      t.equal(res.status, 400);
      t.match(await res.json(), { field: 'offer' });
      t.equal(gw.publishers.get('bad'), undefined);
    });

    await t.test('a session that never connects is closed after webrtc_connect_timeout_ms', async (t) => {
      const res = await fetch(`${gw.baseUrl}/whip/silent`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: chromiumOffer(),
      });
      t.equal(res.status, 201);
      const answer = await res.text();
      t.match(
        answer,
        /a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/,
        'the answer names only the configured address',
      );
      t.notMatch(answer, /a=candidate:\S+ 1 udp \d+ (?!127\.0\.0\.1)/);
      await waitFor('the unconnected session to be closed', () => gw.publishers.get('silent') === undefined, 15000);
      t.pass('closed');
    });

    await t.test('a publisher outside webrtc_ice_remote_networks never publishes', async (t) => {
      const fenced = await startGateway({
        ...engineConfig,
        webrtc_ice_remote_networks: ['10.213.0.0/16'],
        webrtc_connect_timeout_ms: 2000,
      });
      t.teardown(() => fenced.close());
      // Longer than webrtc_connect_timeout_ms: the gateway closes the session of its own accord.
      const error = await SyntheticPublisher.publish(testFixture(), fenced.baseUrl, 'outside', {
        connectTimeoutMs: 4000,
      }).catch((e: unknown) => e);
      t.ok(error instanceof Error, `refused: ${String(error)}`);
      await waitFor('no publisher left', () => fenced.publishers.all().length === 0, 10000);
      t.pass('its session is closed');
    });

    await t.test('a publisher that vanishes is told lost; its push waits in standby', async (t) => {
      const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'gone');
      await keyframeCached(gw, 'gone');
      const started = await gw.post('/rest-api/push/startup', { streamName: 'gone', rtmpUrl: receiver.url('gone') });
      t.equal(started.status, 200);
      await awaitPushState(gw, 'gone', 'running', [], 15000);
      const closed = new Promise<{ reason: string; lost: boolean }>((resolve) =>
        gw.publishers.get('gone')!.once('closed', (reason, lost) => resolve({ reason, lost })),
      );
      await publisher.vanish();
      t.match(await closed, { lost: true }, 'lost, not ended');
      await awaitPushState(gw, 'gone', 'standby', [], 15000);
      await gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId });
    });

    if (engine === 'mediasoup') {
      await t.test(
        'a worker process that dies: its publishers are told lost, the next publish gets a new worker',
        async (t) => {
          const first = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'w1');
          t.teardown(() => first.stop());
          await keyframeCached(gw, 'w1');
          const pid = (gw.local!.engine as { workerPid?: number }).workerPid;
          t.ok(pid, `the worker runs as process ${pid}`);
          const closed = new Promise<{ reason: string; lost: boolean }>((resolve) =>
            gw.publishers.get('w1')!.once('closed', (reason, lost) => resolve({ reason, lost })),
          );
          process.kill(pid!, 'SIGKILL');
          t.match(await closed, { lost: true, reason: /worker/ }, 'the publisher is told lost');
          const again = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'w2');
          t.teardown(() => again.stop());
          await keyframeCached(gw, 'w2');
          const newPid = (gw.local!.engine as { workerPid?: number }).workerPid;
          t.ok(newPid && newPid !== pid, `a new worker, process ${newPid}`);
        },
      );

      await t.test('closing the gateway ends its worker process', async (t) => {
        const pid = (gw.local!.engine as { workerPid?: number }).workerPid!;
        await gw.close();
        await waitFor('the worker process to end', () => !isAlive(pid), 5000);
        t.pass(`process ${pid} ended`);
      });
    }
  });
}
