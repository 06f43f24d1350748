import { keyframeCached } from '../helpers/pushes.js';
import t from 'tap';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { chromiumOffer } from '../helpers/offers.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// Past its load limits the gateway refuses new publishes and pushes with 503 (and says why), and
// takes them again once the load is gone; what runs is left alone. The load here is the test
// itself holding the (shared) event loop busy for 80 ms at a time.

t.test('an event loop held busy: new publishes and pushes get 503, the running push goes on', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const { gw } = await syntheticPublish(t, { overload_event_loop_delay_ms: 50 }, 'cam');
  await keyframeCached(gw, 'cam');
  // What the API decides is waited for (a machine busy with other work may be judged overloaded
  // for a while): the first push is asked for until it is taken.
  const running = await waitFor(
    'a push taken while the load is low',
    async () => {
      const reply = await gw.post('/rest-api/push/startup', {
        streamName: 'cam',
        rtmpUrl: `${nginx.url()}/first`,
        rtmpTransponderFullUrl: true,
      });
      if (reply.status !== 503) return reply;
    },
    30_000,
    500,
  );
  t.equal(running.status, 200, 'a push starts while the load is low');

  const busy = setInterval(() => {
    const until = Date.now() + 80;
    while (Date.now() < until);
  }, 100);
  let released = false;
  const release = (): void => {
    if (!released) clearInterval(busy);
    released = true;
  };
  t.teardown(release);
  // Load that lasts (three windows of a second) is judged so: the API refuses once it has.
  const refused = await waitFor(
    'a new push refused',
    async () => {
      const reply = await gw.post('/rest-api/push/startup', {
        streamName: 'cam',
        rtmpUrl: `${nginx.url()}/second`,
        rtmpTransponderFullUrl: true,
      });
      if (reply.status === 200)
        await gw.post('/rest-api/push/terminate', { mediaSessionId: reply.body.mediaSessionId });
      else return reply;
    },
    20_000,
    500,
  );
  t.equal(refused.status, 503, 'a new push is refused');
  t.match(refused.body, {
    error: 'unavailable',
    message: /overloaded \(event-loop delay p99 \d+ ms \(overload_event_loop_delay_ms 50\)\): a push of cam refused/,
  });
  const whip = await fetch(`${gw.baseUrl}/whip/other`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: chromiumOffer(),
  });
  t.equal(whip.status, 503, 'so is a new publish');
  t.equal(whip.headers.get('retry-after'), '3', 'with a time to retry after');
  t.equal(gw.publishers.get('other'), undefined, 'nothing was created for it');
  const listed = (await gw.post('/rest-api/push/find_all')).body as { state: string }[];
  t.same(
    listed.map((p) => p.state),
    ['running'],
    'the running push goes on',
  );

  release();
  await waitFor(
    'the gateway to take work again',
    async () => {
      const reply = await gw.post('/rest-api/push/startup', {
        streamName: 'cam',
        rtmpUrl: `${nginx.url()}/second`,
        rtmpTransponderFullUrl: true,
      });
      return reply.status === 200;
    },
    10_000,
    500,
  );
  t.pass('once the load is gone, a push starts again');
});
