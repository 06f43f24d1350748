import t from 'tap';
import { readCaptions } from '../../kit/captions.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { SrtListener } from '../../kit/srt-listener.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway } from '../helpers/gateway.js';
import { testFixture } from '../helpers/synthetic.js';

// SRT destinations: the stream's H.264 passed through and its audio as AAC, in MPEG-TS over SRT
// (the gateway calls), received by ffmpeg listening on loopback. The stream id and passphrase are
// secrets; a wrong passphrase is a clear error; a listener that restarts gets the stream again.

const PASSPHRASE = 'srt-pass-4410-secret';
const STREAM_ID = 'SIDsrt7731key';
const logLines: string[] = [];
const gw = await startGateway({ log_level: 'info' }, logLines);
const listener = await SrtListener.start(PASSPHRASE);
const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'srtcam');
t.teardown(async () => {
  await publisher.stop();
  await gw.close();
  await listener.close();
});
const spellings = (secret: string): string[] => [
  secret,
  encodeURIComponent(secret),
  Buffer.from(secret).toString('base64').slice(2, -2),
  Buffer.from(secret).toString('hex'),
];
const url = listener.url(`streamid=${STREAM_ID}&passphrase=${PASSPHRASE}&latency=120`);
let pushId = '';
const push = async (): Promise<{ state: string; counters: { outputBytes: number; reconnects: number } }> =>
  (
    (await gw.post('/rest-api/push/find', { streamName: 'srtcam' })).body as {
      mediaSessionId: string;
      state: string;
      counters: { outputBytes: number; reconnects: number };
    }[]
  ).find((p) => p.mediaSessionId === pushId)!;

t.test(
  'a push to an SRT listener: H.264 and AAC arrive in MPEG-TS; the stream id and passphrase are shown as ***',
  async (t) => {
    const started = await gw.post('/rest-api/push/startup', { streamName: 'srtcam', rtmpUrl: url });
    t.equal(started.status, 200, JSON.stringify(started.body));
    pushId = started.body.mediaSessionId;
    t.match(started.body, {
      state: 'running',
      rtmpUrl: `srt://127.0.0.1:${listener.port}?streamid=***&passphrase=***&latency=120`,
      streamName: '***',
    });
    await waitFor('300 KB at the listener', async () => (await listener.received()) > 300_000, 20_000);
    const received = await probe(listener.file);
    t.match(
      received.streams.map((s) => [s.codec_type, s.codec_name]).sort(),
      [
        ['audio', 'aac'],
        ['video', 'h264'],
      ],
      'H.264 and AAC',
    );
    t.match(
      received.streams.find((s) => s.codec_type === 'video'),
      { width: 1280, height: 720 },
      "the publisher's picture, passed through",
    );
    t.ok(
      received.video.length > 30 && received.audio.length > 30,
      `${received.video.length} video and ${received.audio.length} audio packets`,
    );
    t.ok(received.video[0]!.flags.startsWith('K'), 'a keyframe first');
    const found = await push();
    t.match(found, { state: 'running', counters: { frames: Number } });
    t.ok(found.counters.outputBytes > 300_000, 'its output counted');
  },
);

t.test('captions reach the SRT destination: CEA-608 in the H.264 of the MPEG-TS, read back by ffmpeg', async (t) => {
  for (const text of ['Captions over SRT.', 'And the next one.']) {
    t.match((await gw.post('/rest-api/stream/caption', { streamName: 'srtcam', text })).body, { pushes: 1 });
  }
  const due = (await listener.received()) + 600_000;
  await waitFor('600 KB more at the listener', async () => (await listener.received()) > due, 30_000);
  const shown = (await readCaptions(listener.file)).map((cue) => cue.text).join(' | ');
  t.ok(shown.includes('Captions over SRT.'), `read back (${shown})`);
});

t.test('a listener that restarts gets the stream again: the push reconnects by itself', async (t) => {
  const first = listener.file;
  await listener.restart();
  t.not(listener.file, first, 'a new session');
  await waitFor(
    'the push told the session is lost, then back',
    async () => (await push()).counters.reconnects >= 1,
    30_000,
  );
  await waitFor('media at the new session', async () => (await listener.received()) > 100_000, 20_000);
  const received = await probe(listener.file);
  t.ok(received.video[0]!.flags.startsWith('K'), 'the new session starts with a keyframe');
  t.match(await push(), { state: 'running' });
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: pushId })).status, 200);
  await waitFor("the listener's caller gone", () => !listener.running, 10_000);
});

t.test('a wrong passphrase fails the startup naming it; nothing is left running', async (t) => {
  await listener.restart();
  const before = gw.ffmpeg.count;
  const wrong = 'not-the-passphrase-99';
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'srtcam',
    rtmpUrl: listener.url(`passphrase=${wrong}`),
  });
  t.match(
    res,
    { status: 500, body: { error: 'destination_refused', message: /refused the passphrase/ } },
    JSON.stringify(res.body),
  );
  for (const spelling of spellings(wrong))
    t.notOk(JSON.stringify(res.body).includes(spelling), `no ${spelling} in the error`);
  await waitFor('its ffmpeg gone', () => gw.ffmpeg.count === before, 5000);
  t.equal((await gw.post('/rest-api/push/find_all')).status, 404, 'no push left');
});

t.test('no listener: the startup fails as unreachable', async (t) => {
  await listener.stop();
  const res = await gw.post('/rest-api/push/startup', { streamName: 'srtcam', rtmpUrl: listener.url() });
  t.match(
    res,
    { status: 500, body: { error: 'destination_unreachable', message: /the SRT destination did not answer/ } },
    JSON.stringify(res.body),
  );
});

t.test('the SRT options are checked, each error naming rtmpUrl', async (t) => {
  for (const [bad, why] of [
    ['srt://127.0.0.1', /needs a port/],
    ['srt://127.0.0.1:9000?passphrase=short', /10-79 characters/],
    ['srt://127.0.0.1:9000?latency=200000', /milliseconds/],
    ['srt://127.0.0.1:9000?mode=listener', /caller/],
    ['srt://127.0.0.1:9000?oheadbw=5', /does not set: oheadbw/],
    ['srt://127.0.0.1:9000/live', /takes no path/],
  ] as const) {
    const res = await gw.post('/rest-api/push/startup', { streamName: 'srtcam', rtmpUrl: bad });
    t.equal(res.status, 400, bad);
    t.match(res.body, { field: 'rtmpUrl', message: why }, bad);
  }
});

t.test('the destination policy applies to an SRT host', async (t) => {
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'srtcam',
    rtmpUrl: 'srt://10.20.30.40:9000?passphrase=policy-check-secret',
  });
  t.match(
    res,
    { status: 400, body: { field: 'rtmpUrl', message: /10\.20\.30\.40 is a private address/ } },
    JSON.stringify(res.body),
  );
  t.notOk(JSON.stringify(res.body).includes('policy-check-secret'), 'no passphrase in the refusal');
});

t.test('no stream id or passphrase in the log', async (t) => {
  t.ok(
    logLines.some((l) => l.includes('srt://127.0.0.1')),
    'the pushes were logged',
  );
  for (const secret of [PASSPHRASE, STREAM_ID])
    for (const spelling of spellings(secret))
      t.notOk(
        logLines.some((l) => l.includes(spelling)),
        `no ${spelling} in the log`,
      );
});
