import t from 'tap';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { ffmpegCount } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// A layer asked of a stream published without simulcast (a 1280x720 camera): the push transcodes
// to that layer's size, as a browser would have sent it. What cannot be a layer is refused.

t.test('without simulcast, a layer is transcoded to its size; a wrong layer is a 400 naming the field', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const { gw } = await syntheticPublish(t, {}, 'single');
  await keyframeCached(gw, 'single');
  const start = (name: string, fields: object): ReturnType<typeof gw.post> =>
    gw.post('/rest-api/push/startup', {
      streamName: 'single',
      rtmpUrl: `${nginx.url()}/${name}`,
      rtmpTransponderFullUrl: true,
      ...fields,
    });

  t.match(await start('bad', { layer: 'top' }), { status: 400, body: { field: 'layer' } });
  t.match(
    await start('bad', { layer: 30 }),
    { status: 400, body: { field: 'layer' } },
    'a height too small for a picture',
  );
  t.match(await start('bad', { layerPolicy: 'hold' }), { status: 400, body: { field: 'layerPolicy' } });
  t.equal(await ffmpegCount(), 0, 'nothing started for them');

  const low = await start('low', { layer: 'low' });
  t.equal(low.status, 200, JSON.stringify(low.body));
  const upTo = await start('up-to', { layer: '360' });
  t.equal(upTo.status, 200, JSON.stringify(upTo.body));
  t.match([low.body, upTo.body], [{ transcoding: true }, { transcoding: true }], 'both transcode');
  t.notOk(low.body.layer, 'no layer is sent: the stream has none');
  for (const [name, height] of [
    ['low', 180],
    ['up-to', 360],
  ] as const) {
    await waitFor(
      `1 s of ${name} recorded`,
      async () => ((await probe(nginx.recording(name)).catch(() => undefined))?.video.length ?? 0) >= 30,
      30_000,
      250,
    );
    t.match(
      (await probe(nginx.recording(name))).streams.find((s) => s.codec_type === 'video'),
      { codec_name: 'h264', height },
      `${name}: ${height} high`,
    );
  }
  for (const push of [low, upTo])
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: push.body.mediaSessionId })).status, 200);
  await waitFor('no ffmpeg left', async () => (await ffmpegCount()) === 0);
});
