import { keyframeCached } from '../helpers/pushes.js';
import t from 'tap';
import { waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// A transponder that fails while live (its key refused on reconnect) stays listed with the reason,
// and a new startup of the same stream to the same URL replaces it instead of answering 409.

t.test('a transponder that failed at runtime: listed with its reason, and a new startup to the same URL answers 200', async (t) => {
  const receiver = await RtmpReceiver.start();
  t.teardown(() => receiver.close());
  const { gw } = await syntheticPublish(t, { rtmp_push_restore_attempts: 2, rtmp_push_restore_interval_ms: 100 }, 'cam');
  await keyframeCached(gw, 'cam');
  const rtmpUrl = receiver.url();
  const first = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl });
  t.equal(first.status, 200);

  receiver.refuse = { code: 'NetStream.Publish.BadName', description: 'stream key revoked' };
  receiver.dropAll();
  const failed = await waitFor('the transponder to fail', async () => {
    const [push] = (await gw.post('/rest-api/push/find', { rtmpUrl })).body ?? [];
    return push?.state === 'failed' && push;
  }, 10_000);
  t.match(failed.lastError, /stream key revoked/, 'find tells why');
  t.equal(failed.mediaSessionId, first.body.mediaSessionId);

  receiver.refuse = undefined;
  const second = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl });
  t.equal(second.status, 200, `startup again: ${JSON.stringify(second.body)}`);
  t.not(second.body.mediaSessionId, first.body.mediaSessionId, 'a new transponder');
  const listed = (await gw.post('/rest-api/push/find', { rtmpUrl })).body;
  t.equal(listed.length, 1, 'the failed one was replaced');
  t.equal(listed[0].state, 'running');
  t.equal((await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl })).status, 409, 'a running one still conflicts');
});

t.test('a failed startup says whose fault it was: the destination refusing, unreachable, or the gateway itself', async (t) => {
  const receiver = await RtmpReceiver.start();
  t.teardown(() => receiver.close());
  const { gw } = await syntheticPublish(t, {}, 'codes');
  await keyframeCached(gw, 'codes');
  receiver.refuse = { code: 'NetStream.Publish.BadName', description: 'no such stream key' };
  const refused = await gw.post('/rest-api/push/startup', { streamName: 'codes', rtmpUrl: receiver.url() });
  t.equal(refused.status, 500, 'Web Call Server\'s status');
  t.match(refused.body, { error: 'destination_refused', message: /no such stream key/ });
  const closedPort = await gw.post('/rest-api/push/startup', { streamName: 'codes', rtmpUrl: 'rtmp://127.0.0.1:1/live' });
  t.match(closedPort.body, { error: 'destination_unreachable', message: /ECONNREFUSED/ });

  const { gw: broken } = await syntheticPublish(t, { ffmpeg_path: '/nonexistent/ffmpeg' }, 'codes');
  await keyframeCached(broken, 'codes');
  receiver.refuse = undefined;
  const local = await broken.post('/rest-api/push/startup', { streamName: 'codes', rtmpUrl: receiver.url() });
  t.equal(local.status, 500);
  t.match(local.body, { error: 'internal', message: /ffmpeg/ }, 'the gateway\'s own fault');
});
