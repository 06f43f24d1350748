import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { chromiumOffer } from '../helpers/offers.js';

// A WHIP publish whose peer connection failed on the client's side (no ICE check ever came) does
// not hold its name until the connect timeout: the same client publishing the name again takes it
// at once. Another client still gets 409, and so does the same client once the first has connected.

t.test("a publish that never had an ICE check gives its name to its own client's next publish", async (t) => {
  const gw = await startGateway({ trust_proxy: ['127.0.0.1/32'], webrtc_connect_timeout_ms: 60_000 });
  t.teardown(() => gw.close());
  const publish = (from: string): Promise<Response> =>
    fetch(`${gw.baseUrl}/whip/retry`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', 'x-forwarded-for': from },
      body: chromiumOffer({ ufrag: Math.random().toString(36).slice(2, 10) }),
    });

  const first = await publish('192.0.2.10');
  t.equal(first.status, 201);
  const firstId = gw.publishers.get('retry')!.id;
  t.equal((await publish('192.0.2.11')).status, 409, 'another client is refused: the name is taken');
  const second = await publish('192.0.2.10');
  t.equal(second.status, 201, 'the same client publishing again takes the name at once');
  t.not(gw.publishers.get('retry')!.id, firstId, 'a new publish');
  const stale = await fetch(new URL(first.headers.get('location')!, gw.baseUrl), { method: 'DELETE' });
  t.equal(stale.status, 404, 'the first one is gone');
});
