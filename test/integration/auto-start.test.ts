import t from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { testFixture } from '../helpers/synthetic.js';

t.test('rtmp_push_auto_start republishes every stream that starts publishing, by the naming rules', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const gw = await startGateway({ rtmp_push_auto_start: true, rtmp_push_auto_start_url: nginx.url() });
  t.teardown(() => gw.close());
  const publishers = await Promise.all(
    ['auto1', 'auto2'].map((name) => SyntheticPublisher.publish(testFixture(), gw.baseUrl, name)),
  );
  t.teardown(() => Promise.all(publishers.map((p) => p.stop())));

  const streams = await waitFor(
    'both streams at nginx-rtmp',
    async () => {
      const live = (await nginx.streams())
        .filter((s) => s.width > 0)
        .map((s) => s.name)
        .sort();
      return live.length === 2 && live;
    },
    10000,
  );
  t.same(streams, ['rtmp_auto1', 'rtmp_auto2']);
  const listed = await gw.post('/rest-api/push/find_all');
  t.same(listed.body.map((x: { sourceStreamName: string }) => x.sourceStreamName).sort(), ['auto1', 'auto2']);

  await publishers[0]!.stop();
  await waitFor(
    'the first push to end with its publisher',
    async () => (await gw.post('/rest-api/push/find_all')).body.length === 1,
    5000,
  );
});

t.test('auto-start needs a URL', async (t) => {
  t.throws(() => parseConfig({ rtmp_push_auto_start: true }), /rtmp_push_auto_start_url: must be set/);
  t.throws(
    () => parseConfig({ rtmp_push_auto_start_url: 'http://x/live' }),
    /rtmp_push_auto_start_url: must be an rtmp/,
  );
});
