import t from 'tap';
import { syntheticPublish } from '../helpers/synthetic.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';

// A real WebRTC publisher without a browser (werift as the client, over WHIP), a real nginx-rtmp.

t.test('rtmp_publisher_ip: the RTMP server sees the connection come from that address', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const { gw } = await syntheticPublish(t, { rtmp_publisher_ip: '127.0.0.2' }, 'out1');

  const res = await gw.post('/rest-api/push/startup', { streamName: 'out1', rtmpUrl: nginx.url() });
  t.equal(res.status, 200, JSON.stringify(res.body));
  const stream = await waitFor(
    'the stream at nginx-rtmp',
    async () => (await nginx.streams()).find((s) => s.name === 'rtmp_out1' && s.width > 0),
    10000,
  );
  t.equal(stream.address, '127.0.0.2');
  t.match(stream, { width: 1280, height: 720, videoCodec: 'H264', audioCodec: 'AAC' });
});

t.test('an address this machine does not have fails the startup with the reason, sending nothing', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  // 198.51.100.0/24 is reserved for documentation: binding to it fails before any packet leaves.
  const { gw } = await syntheticPublish(t, { rtmp_publisher_ip: '198.51.100.7' }, 'out2');

  const res = await gw.post('/rest-api/push/startup', { streamName: 'out2', rtmpUrl: nginx.url() });
  t.equal(res.status, 500);
  t.match(res.body.message, /could not publish to the destination: .*EADDRNOTAVAIL/);
  t.equal((await gw.post('/rest-api/push/find_all')).status, 404, 'nothing is left');
});
