import { keyframeCached } from '../helpers/pushes.js';
import t from 'tap';
import { sleep, waitFor } from '../../kit/processes.js';
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
  // Setting up (the publisher's handshake, code loaded for the first time) can itself hold the loop
  // past 50 ms: the first push waits for a window without overload.
  await waitFor('the load to be low', async () => ((await (await fetch(`${gw.baseUrl}/health`)).json()) as { overloaded: boolean }).overloaded === false, 10_000, 200);
  const running = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: `${nginx.url()}/first`, rtmpTransponderFullUrl: true });
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
  await sleep(2500);
  const refused = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: `${nginx.url()}/second`, rtmpTransponderFullUrl: true });
  t.equal(refused.status, 503, 'a new push is refused');
  t.match(refused.body, { error: 'unavailable', message: /overloaded \(event-loop delay p99 \d+ ms \(overload_event_loop_delay_ms 50\)\): a push of cam refused/ });
  const whip = await fetch(`${gw.baseUrl}/whip/other`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: chromiumOffer() });
  t.equal(whip.status, 503, 'so is a new publish');
  t.equal(whip.headers.get('retry-after'), '3', 'with a time to retry after');
  t.equal(gw.publishers.get('other'), undefined, 'nothing was created for it');
  const listed = (await gw.post('/rest-api/push/find_all')).body as { state: string }[];
  t.same(listed.map((p) => p.state), ['running'], 'the running push goes on');

  release();
  await waitFor('the gateway to take work again', async () => {
    const reply = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: `${nginx.url()}/second`, rtmpTransponderFullUrl: true });
    return reply.status === 200;
  }, 10_000, 500);
  t.pass('once the load is gone, a push starts again');
});
