import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readCaptions } from '../../kit/captions.js';
import { loadFixture } from '../../kit/fixture.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { CaptionTrack } from '../../src/captions/track.js';
import { flvFileHeader, flvTag } from '../../src/media/flv.js';
import { fixtureFlvVideo } from '../helpers/flv-video.js';
import { startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';

// Captions are read back by ffmpeg's own CEA-608 decoder (nothing of the project's reads them):
// first from a file the caption track wrote alone, then from what nginx-rtmp received of a
// passthrough push and of a transcoded one, the captions sent over REST.

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
/** ffmpeg's decoder shows a typographic apostrophe for 608's 0x27. */
const plain = (text: string): string => text.replace(/’/g, "'");

t.test('the caption track: ffmpeg reads each caption out of the frames, accents and braces included', async (t) => {
  const video = fixtureFlvVideo();
  const dir = await mkdtemp(join(tmpdir(), 'captions-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const track = new CaptionTrack();
  const parts = [flvFileHeader(), flvTag(9, 0, video.header)];
  const captions = new Map([
    [15, 'Hello, world.'],
    [75, 'Captions from the gateway, in line 21.'],
    [200, 'Él dijo: ¡sí! {ok}'],
    [260, 'The end.'],
  ]);
  // A speech recogniser's guesses before its final text, each written over the one before, not
  // rolled up as captions of their own. (ffmpeg's decoder ends a row at the last character written
  // to it, so the deletion of a longer guess's rest is checked by the unit test, not here.)
  const interim = new Map([
    [140, 'Él di'],
    [170, 'Él dijo que sí, y también'],
  ]);
  const fps = 30; // the fixture: 10 s at 30 fps
  for (let i = 0; i < 300; i++) {
    const caption = captions.get(i);
    if (caption) track.write(caption);
    const guess = interim.get(i);
    if (guess) track.write(guess, false);
    const timestamp = Math.round((i * 1000) / fps);
    parts.push(flvTag(9, timestamp, track.frame(video.frame(i), timestamp)));
  }
  const file = join(dir, 'captions.flv');
  await writeFile(file, Buffer.concat(parts));
  const shown = (await readCaptions(file)).map((cue) => plain(cue.text)).join(' | ');
  for (const caption of [...captions.values()].slice(0, 3)) t.ok(shown.includes(caption), `"${caption}" read back (${shown})`);
  t.notOk(/también|dijo que/.test(shown), 'the interim text was written over by the final text, none of it left');
  t.equal(track.replaced, 0, 'every character had a code');
});

t.test('REST captions reach a passthrough push, a transcoded one and a recording, as 608 in the H.264 each holds', async (t) => {
  const nginx = await NginxRtmp.start();
  const records = await mkdtemp(join(tmpdir(), 'captions-recordings-'));
  const gw = await startGateway({ record_dir: records, record_min_free_mb: 1 });
  let publisher: SyntheticPublisher | undefined;
  // In this order: the recording's ffmpeg has ended before its folder goes.
  t.teardown(async () => {
    await publisher?.stop();
    await gw.close();
    await nginx.stop();
    await rm(records, { recursive: true, force: true });
  });
  publisher = await SyntheticPublisher.publish(loadFixture(FIXTURES), gw.baseUrl, 'cam');
  await keyframeCached(gw, 'cam');

  const caption = (body: unknown): ReturnType<typeof gw.post> => gw.post('/rest-api/stream/caption', body);
  t.match(await caption({ streamName: 'cam', text: '' }), { status: 400, body: { field: 'text' } }, 'empty');
  t.match(await caption({ streamName: 'cam', text: 'two\nlines' }), { status: 400, body: { field: 'text' } }, 'a control character');
  t.match(await caption({ streamName: 'cam', text: 'word '.repeat(40) }), { status: 400, body: { field: 'text' } }, 'more than four rows');
  t.match(await caption({ text: 'hi' }), { status: 400, body: { field: 'streamName' } }, 'no stream');
  t.match(await caption({ streamName: 'nobody', text: 'hi' }), { status: 404 }, 'a stream not publishing');
  t.same((await caption({ streamName: 'cam', text: 'Before any push.' })).body, { pushes: 0 }, 'a stream without pushes: nothing carries it');

  for (const [stream, fields] of [
    ['pass', {}],
    ['small', { height: 360 }],
  ] as const) {
    const started = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: `${nginx.url()}/${stream}`, rtmpTransponderFullUrl: true, ...fields });
    t.equal(started.status, 200, JSON.stringify(started.body));
  }
  const recording = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: 'record://' });
  t.equal(recording.status, 200, JSON.stringify(recording.body));
  const frames = async (stream: string): Promise<number> => (await probe(nginx.recording(stream)).catch(() => undefined))?.video.length ?? 0;
  await waitFor('both pushes recorded', async () => (await frames('pass')) >= 30 && (await frames('small')) >= 30, 30_000, 250);

  const sent = ['Hello from the gateway.', "Second caption: it's here, ¡olé!", 'Third one, braces {ok}.', 'Bye.'];
  t.match(await caption({ streamName: 'cam', text: 'Hello fr', final: 'maybe' }), { status: 400, body: { field: 'final' } }, 'final: a boolean');
  t.same((await caption({ streamName: 'cam', text: 'Hello fr', final: false })).body, { pushes: 3 }, 'an interim caption, written over by the next');
  for (const text of sent) t.same((await caption({ streamName: 'cam', text })).body, { pushes: 3 });
  // Four captions are about 80 byte pairs: under 3 s of frames at one pair a frame.
  const due = { pass: (await frames('pass')) + 150, small: (await frames('small')) + 150 };
  await waitFor('5 s more recorded', async () => (await frames('pass')) >= due.pass && (await frames('small')) >= due.small, 30_000, 250);
  const [part] = (await gw.post('/rest-api/recording/find_all', { streamName: 'cam' })).body as { fileName: string }[];
  const files = { pass: nginx.recording('pass'), small: nginx.recording('small'), recording: join(records, part!.fileName) };
  for (const [what, file] of Object.entries(files)) {
    const shown = (await readCaptions(file)).map((cue) => plain(cue.text)).join(' | ');
    for (const text of sent.slice(0, 3)) t.ok(shown.includes(text), `${what}: "${text}" read back (${shown})`);
  }
  const burst = await Promise.all(Array.from({ length: 30 }, () => caption({ streamName: 'cam', text: 'Flood.' })));
  const refused = burst.filter((reply) => reply.status === 429);
  t.ok(refused.length >= 10 && refused.length < 30, `a burst of 30 captions: past 20 in a second refused (${refused.length})`);
  const { streams } = await probe(nginx.recording('pass'));
  t.match(
    streams.find((s) => s.codec_type === 'video'),
    { codec_name: 'h264', width: 1280, height: 720 },
    'the passthrough push still sends the camera as it came',
  );
});
