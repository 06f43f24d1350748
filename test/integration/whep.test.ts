import t from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { WhepViewer } from '../../kit/whep-viewer.js';
import { startGateway } from '../helpers/gateway.js';
import { testFixture } from '../helpers/synthetic.js';

// WHEP: a viewer gets the published stream as it arrives (H.264 and Opus passed on by the media
// engine), while the stream is pushed; viewers are limited per stream and in all; watching needs
// the control key or a view token once keys are set.

const KEY = 'whep-test-control-key-0123456789';
const VIEW_KEY = 'whep-view-key-0123456789abcdef';
const PUBLISH_ONLY = 'whep-publish-only-key-0123456789';
const nginx = await NginxRtmp.start();
const gw = await startGateway({
  webrtc_engine: 'mediasoup',
  limit_viewers_per_stream: 2,
  limit_viewers_per_client: 2,
  api_keys: [{ id: 'ops', secret: KEY, scope: ['control'] }],
  publish_keys: [
    { id: 'viewer', secret: VIEW_KEY, streams: ['cam'], destinations: 'none', view: true, mixers: [] },
    { id: 'studio', secret: PUBLISH_ONLY, streams: ['*'], destinations: 'none', view: false, mixers: [] },
  ],
});
const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam', { token: KEY });
const viewers: WhepViewer[] = [];
t.teardown(async () => {
  for (const viewer of viewers) await viewer.close();
  await publisher.stop();
  await gw.close();
  await nginx.stop();
});
const watch = async (token = KEY, name = 'cam'): Promise<WhepViewer> => {
  const viewer = await WhepViewer.watch(gw.baseUrl, name, { token });
  viewers.push(viewer);
  return viewer;
};
const post = (path: string, body: string, token?: string): Promise<Response> =>
  fetch(gw.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });

t.test("a viewer gets the stream's video from a keyframe, and its audio, while the stream is pushed", async (t) => {
  const push = await fetch(gw.baseUrl + '/rest-api/push/startup', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ streamName: 'cam', rtmpUrl: nginx.url() }),
  });
  t.equal(push.status, 200);
  const viewer = await watch();
  t.match(viewer.location, /^\/whep\/cam\/[\w-]+$/, 'Location names the session');
  await waitFor(
    'video, a keyframe and audio at the viewer',
    () => viewer.received.video > 200 && viewer.received.keyframes > 0 && viewer.received.audio > 50,
    15_000,
  );
  t.pass(
    `${viewer.received.video} video packets (${viewer.received.keyframes} of keyframes), ${viewer.received.audio} audio`,
  );
  await waitFor(
    'the push at nginx all along',
    async () => (await nginx.streams()).some((s) => s.name === 'rtmp_cam' && s.width > 0),
    10_000,
  );
  const pushes = await fetch(gw.baseUrl + '/rest-api/push/find_all', {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
  });
  t.match(
    await pushes.json(),
    [{ state: 'running', counters: { framesDropped: 0, framesDiscarded: 0 } }],
    'the push untouched by the viewer',
  );
});

t.test('a view token watches its streams; a publish-only token and no token do not', async (t) => {
  const viewer = await watch(VIEW_KEY);
  await waitFor("video at the token's viewer", () => viewer.received.video > 50, 15_000);
  const offer = 'v=0\r\n';
  t.equal((await post('/whep/cam', offer)).status, 401, 'no token: 401');
  const publishOnly = await post('/whep/cam', offer, PUBLISH_ONLY);
  t.equal(publishOnly.status, 403, 'a token without the view grant: 403');
  t.match(await publishOnly.json(), { message: /does not allow watching/ });
  t.equal((await post('/whep/other', offer, VIEW_KEY)).status, 403, 'a stream the token does not name: 403');
});

t.test('viewers per stream are limited; DELETE ends one and frees its place', async (t) => {
  await t.rejects(watch(), /WHEP answered 429: .*limit_viewers_per_stream/);
  const first = viewers[0]!;
  const deleted = await fetch(gw.baseUrl + first.location, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${KEY}` },
  });
  t.equal(deleted.status, 200);
  t.equal(
    (await fetch(gw.baseUrl + first.location, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } }))
      .status,
    404,
    'gone',
  );
  const again = await watch();
  await waitFor('video at the new viewer', () => again.received.video > 20, 15_000);
});

t.test('a viewer that vanishes (frozen, cut off) slows neither the publisher nor the push', async (t) => {
  const gone = viewers.find((v) => v.connectionState === 'connected')!;
  await gone.vanish();
  const pushed = async (): Promise<number> => (await nginx.streams()).find((s) => s.name === 'rtmp_cam')?.bytesIn ?? 0;
  const before = await pushed();
  const pushesBefore = await (
    await fetch(gw.baseUrl + '/rest-api/push/find_all', { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })
  ).json();
  // Five seconds of the stream's media (at least 300 KB at the fixture's bitrate) reach the destination meanwhile.
  await waitFor('300 KB more at the destination', async () => (await pushed()) > before + 300_000, 15_000);
  const [push] = await (
    await fetch(gw.baseUrl + '/rest-api/push/find_all', { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })
  ).json();
  t.match(
    push,
    {
      state: 'running',
      counters: { framesDropped: 0, framesLost: pushesBefore[0].counters.framesLost, reconnects: 0 },
    },
    'no frame dropped or lost, no reconnect',
  );
  const other = viewers.find((v) => v !== gone && v.connectionState === 'connected')!;
  const received = other.received.video;
  await waitFor('the other viewer still getting video', () => other.received.video > received + 100, 10_000);
});

t.test('bad requests are refused naming what is wrong', async (t) => {
  const notSdp = await fetch(gw.baseUrl + '/whep/cam', {
    method: 'POST',
    headers: { 'content-type': 'text/plain', authorization: `Bearer ${KEY}` },
    body: 'x',
  });
  t.equal(notSdp.status, 415);
  const bad = await post('/whep/cam', 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n', KEY);
  t.equal(bad.status, 400);
  t.match(await bad.json(), { field: 'offer' });
  await t.rejects(watch(KEY, 'nobody'), /WHEP answered 404: .*not publishing/);
  t.equal(
    (await fetch(gw.baseUrl + '/whep/cam/x', { method: 'PATCH', headers: { authorization: `Bearer ${KEY}` } })).status,
    405,
  );
});

t.test('on werift there are no viewers: 400, saying which engine has them', async (t) => {
  const other = await startGateway({ webrtc_engine: 'werift' });
  t.teardown(() => other.close());
  const p = await SyntheticPublisher.publish(testFixture(), other.baseUrl, 'wcam');
  t.teardown(() => p.stop());
  await t.rejects(WhepViewer.watch(other.baseUrl, 'wcam'), /WHEP answered 400: .*webrtc_engine: mediasoup/);
});
