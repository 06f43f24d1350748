import t from 'tap';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { keyframeCached } from '../helpers/pushes.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// The order of a startup's checks, and startups that race: a stream that is not publishing is told
// before any lookup; a host that does not resolve is a 400 naming rtmpUrl, with no key in it; two
// startups for the same destination at once start one push, and the one refused (409) gives its
// push slot back, so the limit still counts only what runs.

t.test('two startups of one destination at once: one push, one 409, and no slot kept by the refused one', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const { gw } = await syntheticPublish(t, { limit_transponders: 2 }, 'race');
  await keyframeCached(gw, 'race');
  const startup = (path: string): Promise<{ status: number; body: any }> =>
    gw.post('/rest-api/push/startup', {
      streamName: 'race',
      rtmpUrl: `${nginx.url()}/${path}`,
      rtmpTransponderFullUrl: true,
    });
  const answers = await Promise.all([startup('same'), startup('same')]);
  t.same(answers.map((a) => a.status).sort(), [200, 409], JSON.stringify(answers.map((a) => a.body)));
  t.equal(gw.pushService.find({ streamName: 'race' }).length, 1, 'one push');
  const other = await startup('other');
  t.equal(
    other.status,
    200,
    `a second destination still fits under limit_transponders: 2 (${JSON.stringify(other.body)})`,
  );
  const third = await startup('third');
  t.equal(third.status, 503, 'and the limit holds');
});

t.test('a push of a stream that is not publishing is refused before its destination is looked up', async (t) => {
  const { gw } = await syntheticPublish(t, {}, 'here');
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'absent',
    rtmpUrl: 'rtmp://no-such-host.example/live/key',
  });
  t.equal(res.status, 404, 'not publishing: 404, not a DNS error');
  t.match(res.body, { message: /stream absent is not publishing/ });
  const unresolved = await gw.post('/rest-api/push/startup', {
    streamName: 'here',
    rtmpUrl: 'rtmp://no-such-host.example/live2/supersecretkey',
    rtmpTransponderFullUrl: true,
  });
  t.equal(unresolved.status, 400, 'a publishing stream: the host that does not resolve is told');
  t.match(unresolved.body, { field: 'rtmpUrl', message: /does not resolve/ });
  t.notMatch(JSON.stringify(unresolved.body), /supersecretkey/, 'and the stream key is not in the error');
  t.equal(gw.ffmpeg.count, 0, 'nothing was started');
});
