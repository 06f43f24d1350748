import t from 'tap';
import { RtmpReceiver, type RtmpMediaMessage } from '../../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { awaitPushState } from '../helpers/pushes.js';
import { syntheticPublish, testFixture } from '../helpers/synthetic.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// Webhooks of a real push's life: a werift publisher over WHIP, the gateway, a timestamping RTMP
// server as the destination (it drops the connection once), a webhook endpoint on loopback.

const SECRET = 'integration-webhook-secret';
const KEY = 'canary-stream-key-4242';

t.test("a push's whole life reaches the endpoint, in order, signed, with no stream key", async (t) => {
  const hooks = await WebhookReceiver.start(SECRET);
  t.teardown(() => hooks.stop());
  const destination = await RtmpReceiver.start();
  t.teardown(() => destination.close());
  const logLines: string[] = [];
  const { gw, publisher } = await syntheticPublish(
    t,
    {
      webhooks: [
        { id: 'app', url: hooks.url, secret: SECRET, events: [], timeout_ms: 2000, max_attempts: 3, queue_limit: 100 },
      ],
      webrtc_media_timeout_ms: 2000,
      log_level: 'debug',
    },
    'cam',
    logLines,
  );
  await waitFor('published', () => hooks.delivered.length === 1, 5000);
  const started = await gw.post('/rest-api/push/startup', {
    streamName: 'cam',
    rtmpUrl: `${destination.url()}/${KEY}`,
    rtmpTransponderFullUrl: true,
  });
  t.equal(started.status, 200, JSON.stringify(started.body));
  const id = started.body.mediaSessionId as string;
  await awaitPushState(gw, 'cam', 'running', [], 10000);
  destination.dropAll(); // the server drops its publishers: reconnecting, then restored
  await waitFor('restored', () => hooks.delivered.some((h) => h.type === 'transponder.restored'), 15000);
  await publisher.vanish(); // the page closed: lost, standby
  await awaitPushState(gw, 'cam', 'standby', [], 8000);
  const back = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam');
  t.teardown(() => back.stop());
  await awaitPushState(gw, 'cam', 'running', [], 10000);
  await gw.post('/rest-api/push/terminate', { mediaSessionId: id });
  await back.stop();
  await waitFor('the publisher ended', () => hooks.delivered.some((h) => h.type === 'publisher.ended'), 5000);

  const delivered = hooks.delivered;
  t.same(
    delivered.map((h) => h.type),
    [
      'publisher.published',
      'transponder.started',
      'transponder.reconnecting',
      'transponder.restored',
      'publisher.lost',
      'transponder.standby',
      'publisher.returned',
      'transponder.restored',
      'transponder.stopped',
      'publisher.ended',
    ],
    'every event of its life, in order',
  );
  t.ok(
    hooks.received.every((h) => h.signed),
    'every request signed',
  );
  const pushEvents = delivered.filter((h) => h.type.startsWith('transponder.'));
  t.ok(
    pushEvents.every((h) => h.body.data.mediaSessionId === id && h.body.data.stream === 'cam'),
    'push events name the push and the stream',
  );
  t.match(pushEvents[0]!.body.data, { destination: /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/\*\*\*$/, state: 'running' });
  t.match(delivered.find((h) => h.type === 'transponder.reconnecting')!.body.data, { reason: /destination/ });
  t.match(delivered.find((h) => h.type === 'publisher.lost')!.body.data, { reason: String, publisherId: String });
  t.notOk(
    hooks.received.some((h) => JSON.stringify(h.body).includes(KEY)),
    'the stream key is in no event',
  );

  // Every log line about the push names it and its destination (redacted).
  const pushLines = logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.destination !== undefined || l.mediaSessionId !== undefined);
  t.ok(pushLines.length >= 10, `log lines about the push (${pushLines.length})`);
  t.same(
    pushLines
      .filter((l) => l.mediaSessionId !== id || !/\/live\/\*\*\*$/.test(String(l.destination)))
      .map((l) => l.msg),
    [],
    'each with its mediaSessionId and redacted destination',
  );
  t.notOk(
    logLines.some((l) => l.includes(KEY)),
    'the stream key is in no log line',
  );
});

t.test('an endpoint that never answers does not hold back the media', async (t) => {
  const hooks = await WebhookReceiver.start(SECRET);
  t.teardown(() => hooks.stop());
  hooks.answer = () => 'hang';
  const destination = await RtmpReceiver.start();
  t.teardown(() => destination.close());
  const frames: RtmpMediaMessage[] = [];
  destination.on('media', (m) => m.kind === 'video' && !m.sequenceHeader && frames.push(m));
  const { gw } = await syntheticPublish(
    t,
    {
      webhooks: [
        {
          id: 'stuck',
          url: hooks.url,
          secret: SECRET,
          events: [],
          timeout_ms: 60000,
          max_attempts: 3,
          queue_limit: 100,
        },
      ],
    },
    'cam',
  );
  const started = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: destination.url() });
  t.equal(started.status, 200, JSON.stringify(started.body));
  await sleep(4000);
  t.ok(hooks.received.length >= 1, 'the endpoint has a request it does not answer');
  const recent = frames.filter((f) => f.arrivalMs >= Date.now() - 3000);
  const gaps = recent.slice(1).map((f, i) => f.arrivalMs - recent[i]!.arrivalMs);
  t.ok(recent.length >= 80, `video frames keep coming (${recent.length} in 3 s)`);
  t.ok(Math.max(...gaps) < 250, `no gap in the video (largest ${Math.max(...gaps)} ms)`);
  t.equal((await gw.post('/rest-api/push/find', { streamName: 'cam' })).body[0].state, 'running');
});
