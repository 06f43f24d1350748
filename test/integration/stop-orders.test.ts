import t from 'tap';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { awaitPushState, keyframeCached } from '../helpers/pushes.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway } from '../helpers/gateway.js';
import { syntheticPublish, testFixture } from '../helpers/synthetic.js';

// A stop always stops, whatever the order of the closing events: a client that closes its peer
// connection first and sends its stop after (a WHIP DELETE, the SDK's unpublish; the gateway has
// taken it for lost meanwhile, and its pushes wait in standby with the still picture) ends its
// pushes, as a stop sent first does. Standby is only for losses nobody asked for.
// Real components: a werift publisher over WHIP and over the SDK's WebSocket, the gateway, nginx-rtmp.

const MEDIA_TIMEOUT_MS = 1500;

t.test('a WHIP DELETE after the connection closed answers 200 and ends the pushes waiting in standby', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const { gw, publisher } = await syntheticPublish(
    t,
    { rtmp_push_publisher_grace_ms: 60_000, webrtc_media_timeout_ms: MEDIA_TIMEOUT_MS },
    'cam',
  );
  await keyframeCached(gw, 'cam');
  const started = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: nginx.url() });
  t.equal(started.status, 200, JSON.stringify(started.body));
  await awaitPushState(gw, 'cam', 'running', [], 10_000);
  const resource = publisher.resource!;
  t.ok(resource, 'the WHIP session has its resource');

  await publisher.vanish(); // the peer connection closes; no DELETE yet
  await awaitPushState(gw, 'cam', 'standby', [], MEDIA_TIMEOUT_MS + 5000);
  t.equal(gw.publishers.get('cam'), undefined, 'the publisher is taken for lost');

  const deleted = await fetch(resource, { method: 'DELETE' });
  t.equal(deleted.status, 200, 'the late DELETE is answered as the stop it is');
  t.equal(
    (await gw.post('/rest-api/push/find_all', {})).status,
    404,
    'the push is gone at once, not held with the still picture',
  );
  await waitFor('every ffmpeg to end', () => gw.ffmpeg.count === 0, 5000);
  t.pass('no ffmpeg left');

  const again = await fetch(resource, { method: 'DELETE' });
  t.equal(again.status, 404, 'a second DELETE finds nothing to stop');
});

t.test('a DELETE for a session that never was still answers 404', async (t) => {
  const { gw } = await syntheticPublish(t, {}, 'other');
  const reply = await fetch(`${gw.baseUrl}/whip/other/no-such-session`, { method: 'DELETE' });
  t.equal(reply.status, 404);
  t.ok(gw.publishers.get('other'), 'the stream publishing under that name is untouched');
});

/** The states a push went through, as the SDK's destination messages told them. */
const toldStates = (publisher: SyntheticPublisher): string[] =>
  publisher.messages.filter((m) => m.type === 'destination').map((m) => m.state as string);

for (const order of ['peer connection closed, then unpublish', 'unpublish, then peer connection closed'] as const) {
  t.test(`an SDK stop ends the push at once: ${order}`, async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const gw = await startGateway({ rtmp_push_publisher_grace_ms: 60_000, webrtc_media_timeout_ms: MEDIA_TIMEOUT_MS });
    t.teardown(() => gw.close());
    const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'sdkcam', {
      sdk: { rtmpUrl: nginx.url() + '/sdkcam', rtmpTransponderFullUrl: true },
    });
    t.teardown(() => publisher.stop());
    await waitFor('the push live', async () => toldStates(publisher).includes('live'), 15_000);
    await waitFor(
      'video at the server',
      async () => (await nginx.streams()).some((s) => s.name === 'sdkcam' && s.width > 0),
      10_000,
    );

    if (order === 'peer connection closed, then unpublish') {
      await publisher.closePeer();
      await awaitPushState(gw, 'sdkcam', 'standby', [], MEDIA_TIMEOUT_MS + 5000);
      t.ok(
        publisher.messages.some((m) => m.type === 'status' && m.status === 'UNPUBLISHED' && m.lost),
        'the SDK is told its publish was lost',
      );
      publisher.signal({ type: 'unpublish', name: 'sdkcam' });
    } else {
      publisher.signal({ type: 'unpublish', name: 'sdkcam' });
      await publisher.closePeer();
    }
    await waitFor('the push gone', async () => (await gw.post('/rest-api/push/find_all', {})).status === 404, 5000);
    t.pass('the push ends at once, not after the grace period');
    await waitFor(
      'the stream gone at the server',
      async () => !(await nginx.streams()).some((s) => s.name === 'sdkcam'),
      5000,
    );
    await waitFor('every ffmpeg to end', () => gw.ffmpeg.count === 0, 5000);
    if (order === 'unpublish, then peer connection closed')
      t.notOk(
        toldStates(publisher).includes('reconnecting'),
        `no standby for a stop (${toldStates(publisher).join(', ')})`,
      );
  });
}
