import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { annexBPairs, Cea608Reader, seiPairs } from '../../kit/cea608-reader.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../../kit/rtmp-receiver.js';
import { readCaptions, type DecodedCaption } from '../../kit/captions.js';
import { loadFixture } from '../../kit/fixture.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { CaptionTrack } from '../../src/captions/track.js';
import { FlvReader, flvFileHeader, flvTag, isVideoFrameTag } from '../../src/media/flv.js';
import { flvNals } from '../../kit/synthetic-publisher.js';
import { createHash } from 'node:crypto';
import { fixtureFlvVideo } from '../helpers/flv-video.js';
import { startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';

// Captions are read back by ffmpeg's own CEA-608 decoder (nothing of the project's reads them):
// first from a file the caption track wrote alone, then from what nginx-rtmp received of a
// passthrough push and of a transcoded one, the captions sent over REST.

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
/** ffmpeg's decoder shows a typographic apostrophe for 608's 0x27. */
const plain = (text: string): string => text.replace(/’/g, "'");

/** SEI user data registered by ITU-T T.35 for ATSC A/53 (captions) holds "GA94". */
const A53 = Buffer.from('GA94');
const NAL_SEI = 6;

/**
 * Each video frame of an FLV file as a hash of its NAL units with the caption SEIs left out, and
 * how many caption SEIs there were.
 */
async function frameKeys(file: string): Promise<{ keys: string[]; captionSeis: number }> {
  let captionSeis = 0;
  const keys = new FlvReader()
    .push(await readFile(file))
    .filter(isVideoFrameTag)
    .map((tag) => {
      const nals = flvNals(tag.body);
      const kept = nals.filter((nal) => !((nal[0]! & 0x1f) === NAL_SEI && nal.includes(A53)));
      captionSeis += nals.length - kept.length;
      return createHash('sha256').update(Buffer.concat(kept)).digest('hex');
    });
  return { keys, captionSeis };
}

/** A WebVTT file's cues: start (s) and text. */
function parseVtt(text: string): { startS: number; text: string }[] {
  return [...text.matchAll(/^(\d+):(\d\d):(\d\d)\.(\d{3}) --> .*\n(.+)$/gm)].map(([, h, m, s, ms, cue]) => ({
    startS: Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000,
    text: cue!.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&'),
  }));
}

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
    const timestamp = Math.round((i * 1000) / fps);
    const caption = captions.get(i);
    if (caption) track.write({ text: caption, final: true, atMs: timestamp });
    const guess = interim.get(i);
    if (guess) track.write({ text: guess, final: false, atMs: timestamp });
    parts.push(flvTag(9, timestamp, track.frame(video.frame(i), timestamp, timestamp)));
  }
  const file = join(dir, 'captions.flv');
  await writeFile(file, Buffer.concat(parts));
  const shown = (await readCaptions(file)).map((cue) => plain(cue.text)).join(' | ');
  for (const caption of [...captions.values()].slice(0, 3))
    t.ok(shown.includes(caption), `"${caption}" read back (${shown})`);
  t.notOk(/también|dijo que/.test(shown), 'the interim text was written over by the final text, none of it left');
  t.equal(track.replaced, 0, 'every character had a code');
});

t.test(
  'REST captions reach a passthrough push, a transcoded one and a recording, as 608 in the H.264 each holds',
  async (t) => {
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
    t.match(
      await caption({ streamName: 'cam', text: 'two\nlines' }),
      { status: 400, body: { field: 'text' } },
      'a control character',
    );
    t.match(
      await caption({ streamName: 'cam', text: 'word '.repeat(40) }),
      { status: 400, body: { field: 'text' } },
      'more than four rows',
    );
    t.match(await caption({ text: 'hi' }), { status: 400, body: { field: 'streamName' } }, 'no stream');
    t.match(await caption({ streamName: 'nobody', text: 'hi' }), { status: 404 }, 'a stream not publishing');
    t.match(
      (await caption({ streamName: 'cam', text: 'Before any push.' })).body,
      { pushes: 0, at: Number },
      'a stream without pushes: nothing carries it',
    );
    t.match(
      await caption({ streamName: 'cam', text: 'hi', at: -1 }),
      { status: 400, body: { field: 'at' } },
      'at: not negative',
    );
    t.match(
      await caption({ streamName: 'cam', text: 'hi', at: 86_400_000 }),
      { status: 400, body: { field: 'at' } },
      'at: a day ahead',
    );

    t.match(
      await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: `${nginx.url()}/x`, captions: 'sideways' }),
      { status: 400, body: { field: 'captions' } },
      'captions: a mode it has, or a boolean',
    );
    const pushIds: Record<string, string> = {};
    for (const [stream, fields] of [
      ['pass', {}],
      ['small', { height: 360 }],
      ['plain', { captions: false }],
      ['popon', { captions: 'pop-on' }],
    ] as const) {
      const started = await gw.post('/rest-api/push/startup', {
        streamName: 'cam',
        rtmpUrl: `${nginx.url()}/${stream}`,
        rtmpTransponderFullUrl: true,
        ...fields,
      });
      t.equal(started.status, 200, JSON.stringify(started.body));
      pushIds[stream] = (started.body as { mediaSessionId: string }).mediaSessionId;
      t.equal(
        (started.body as { captions: unknown }).captions,
        'captions' in fields ? fields.captions : 'roll-up',
        `${stream}: captions told in its info`,
      );
    }
    const recording = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: 'record://' });
    t.equal(recording.status, 200, JSON.stringify(recording.body));
    const frames = async (stream: string): Promise<number> =>
      (await probe(nginx.recording(stream)).catch(() => undefined))?.video.length ?? 0;
    const moreFrames = async (what: string, count: number): Promise<void> => {
      const due = { pass: (await frames('pass')) + count, small: (await frames('small')) + count };
      await waitFor(
        what,
        async () => (await frames('pass')) >= due.pass && (await frames('small')) >= due.small,
        30_000,
        250,
      );
    };
    await waitFor(
      'both pushes recorded',
      async () => (await frames('pass')) >= 30 && (await frames('small')) >= 30,
      30_000,
      250,
    );

    // Each caption goes on the frames captured when it came, or at the media time `at` names: the
    // decoded cues are as far apart as the captions' times (a roll-up cue shows from its carriage return).
    const sent = ['Hello from the gateway.', "Second caption: it's here, ¡olé!", 'Third one, braces {ok}.', 'Bye.'];
    t.match(
      await caption({ streamName: 'cam', text: 'Hello fr', final: 'maybe' }),
      { status: 400, body: { field: 'final' } },
      'final: a boolean',
    );
    t.match(
      (await caption({ streamName: 'cam', text: 'Hello fr', final: false })).body,
      { pushes: 4 },
      'an interim caption, written over by the next',
    );
    const at: number[] = [];
    const send = async (text: string, when?: number): Promise<void> => {
      const reply = await caption({ streamName: 'cam', text, ...(when === undefined ? {} : { at: when }) });
      t.match(reply.body, { pushes: 4, at: Number }, `"${text}" in the four pushes that carry captions`);
      at.push((reply.body as { at: number }).at);
    };
    await send(sent[0]!);
    await moreFrames('2 s more recorded', 60);
    await send(sent[1]!);
    await send(sent[2]!, at[1]! + 2500);
    await send(sent[3]!, at[1]! + 4000);
    t.equal(at[2], at[1]! + 2500, 'placed at the media time asked');
    await moreFrames('6 s more recorded', 180);
    const found = (await gw.post('/rest-api/push/find', { streamName: 'cam' })).body as {
      mediaSessionId: string;
      counters: Record<string, number>;
    }[];
    const counters = Object.fromEntries(
      Object.entries(pushIds).map(([stream, id]) => [stream, found.find((p) => p.mediaSessionId === id)!.counters]),
    );
    t.match(
      counters.pass,
      { captionsSent: 5, captionCharactersReplaced: 0, captionsDropped: 0 },
      "the passthrough push's caption counters: the interim and four captions",
    );
    t.notOk('captionsSent' in counters.plain!, 'none on the push without captions');
    t.equal(
      (
        await gw.post('/rest-api/push/terminate', {
          mediaSessionId: (recording.body as { mediaSessionId: string }).mediaSessionId,
        })
      ).status,
      200,
    );
    const [part] = (await gw.post('/rest-api/recording/find_all', { streamName: 'cam' })).body as {
      fileName: string;
    }[];
    const vttFile = join(records, part!.fileName.replace(/\.mp4$/, '.vtt'));
    await waitFor(
      'the WebVTT beside the part',
      () =>
        readFile(vttFile, 'utf8').then(
          () => true,
          () => false,
        ),
      30_000,
      100,
    );
    const listed = (await gw.post('/rest-api/recording/find_all', { streamName: 'cam' })).body as {
      captionsFile: string | null;
    }[];
    t.equal(listed[0]!.captionsFile, basename(vttFile), 'find_all names the WebVTT beside the part');
    const download = await fetch(`${gw.baseUrl}/rest-api/recording/download/${basename(vttFile)}`);
    t.equal(download.headers.get('content-type'), 'text/vtt; charset=utf-8', 'downloaded as WebVTT');
    t.equal(await download.text(), await readFile(vttFile, 'utf8'));
    const files = {
      pass: nginx.recording('pass'),
      small: nginx.recording('small'),
      recording: join(records, part!.fileName),
    };
    const startOf = (cues: DecodedCaption[], text: string): number | undefined =>
      cues.find((cue) => plain(cue.text).endsWith(text))?.startS;
    const decoded: Record<string, DecodedCaption[]> = {};
    for (const [what, file] of Object.entries(files)) {
      const cues = (decoded[what] = await readCaptions(file));
      const shown = cues.map((cue) => plain(cue.text)).join(' | ');
      for (const text of sent.slice(0, 3)) t.ok(shown.includes(text), `${what}: "${text}" read back (${shown})`);
      for (const i of [1, 2]) {
        const apartMs = ((startOf(cues, sent[i]!) ?? NaN) - (startOf(cues, sent[i - 1]!) ?? NaN)) * 1000;
        t.ok(
          Math.abs(apartMs - (at[i]! - at[i - 1]!)) <= 300,
          `${what}: captions ${i - 1} and ${i} shown ${Math.round(apartMs)} ms apart, sent ${at[i]! - at[i - 1]!} ms apart`,
        );
      }
    }
    t.same(await readCaptions(nginx.recording('plain')), [], 'the push with captions: false carries none');
    // Pop-on: each final caption shown whole, in place of the one before; interim text not shown.
    const popOn = (await readCaptions(nginx.recording('popon'))).map((cue) => plain(cue.text));
    t.same(popOn.slice(0, 3), sent.slice(0, 3), `the pop-on push shows each caption alone (${popOn.join(' | ')})`);

    // Byte for byte: the passthrough push's frames, its caption SEI NAL units taken out, are the
    // frames the push without captions sent (the same camera, passed through).
    const pass = await frameKeys(nginx.recording('pass'));
    const plainFrames = await frameKeys(nginx.recording('plain'));
    t.equal(plainFrames.captionSeis, 0);
    t.ok(pass.captionSeis > 150, `the passthrough push's frames carried caption SEIs (${pass.captionSeis})`);
    const passKeys = new Set(pass.keys);
    const missing = plainFrames.keys.filter((key) => !passKeys.has(key)).length;
    t.ok(
      missing <= 3 && plainFrames.keys.length > 200,
      `${plainFrames.keys.length - missing} of ${plainFrames.keys.length} frames identical but for the caption SEI`,
    );

    // The WebVTT: the same cues, interim text made one with its final, at the times the decoder shows them.
    const vtt = parseVtt(await readFile(vttFile, 'utf8'));
    t.same(
      vtt.map((cue) => cue.text),
      sent,
      'a cue per caption, in order, the interim text written over',
    );
    for (const i of [1, 2]) {
      const decodedS = startOf(decoded.recording!, sent[i]!)!;
      t.ok(
        Math.abs(vtt[i]!.startS - decodedS) <= 0.3,
        `cue ${i}: at ${vtt[i]!.startS} s in the WebVTT, ${decodedS} s in the video`,
      );
    }
    const burst = await Promise.all(Array.from({ length: 30 }, () => caption({ streamName: 'cam', text: 'Flood.' })));
    const refused = burst.filter((reply) => reply.status === 429);
    t.ok(
      refused.length >= 10 && refused.length < 30,
      `a burst of 30 captions: past 20 in a second refused (${refused.length})`,
    );
    const { streams } = await probe(nginx.recording('pass'));
    t.match(
      streams.find((s) => s.codec_type === 'video'),
      { codec_name: 'h264', width: 1280, height: 720 },
      'the passthrough push still sends the camera as it came',
    );
  },
);

t.test(
  'a decoder that starts in no mode shows the captions of a push after it reconnected, and from the middle of a recording',
  async (t) => {
    const receiver = await RtmpReceiver.start();
    const records = await mkdtemp(join(tmpdir(), 'captions-join-'));
    const gw = await startGateway({ record_dir: records, record_min_free_mb: 1 });
    let publisher: SyntheticPublisher | undefined;
    t.teardown(async () => {
      await publisher?.stop();
      await gw.close();
      await receiver.close();
      await rm(records, { recursive: true, force: true });
    });
    publisher = await SyntheticPublisher.publish(loadFixture(FIXTURES), gw.baseUrl, 'join');
    await keyframeCached(gw, 'join');
    const video: RtmpMediaMessage[] = [];
    receiver.on('media', (m) => m.kind === 'video' && !m.sequenceHeader && video.push(m));
    const pushed = await gw.post('/rest-api/push/startup', {
      streamName: 'join',
      rtmpUrl: `${receiver.url()}/join`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(pushed.status, 200, JSON.stringify(pushed.body));
    const recording = await gw.post('/rest-api/push/startup', { streamName: 'join', rtmpUrl: 'record://' });
    t.equal(recording.status, 200, JSON.stringify(recording.body));
    const recordedFrom = Date.now();
    const frames = (connection: number): number => video.filter((m) => m.publish.connection === connection).length;
    const caption = async (text: string): Promise<number> => {
      const reply = await gw.post('/rest-api/stream/caption', { streamName: 'join', text });
      t.match(reply.body, { pushes: 2 }, `"${text}" in the push and the recording`);
      return Date.now();
    };
    await waitFor('a second of the push', () => frames(1) >= 30, 20_000);
    const firstSent = await caption('Before the reconnect.');
    await waitFor('3 s more of the push', () => frames(1) >= 120, 20_000);
    receiver.dropAll();
    await waitFor('the push back on a second link', () => frames(2) >= 30, 30_000);
    const secondSent = await caption('After the reconnect.');
    await waitFor('3 s of the second link', () => frames(2) >= 120, 20_000);
    await caption('Last words.');
    await waitFor('3 s more of the second link', () => frames(2) >= 210, 20_000);

    const second = new Cea608Reader();
    for (const m of video.filter((m) => m.publish.connection === 2))
      for (const nal of flvNals(m.data)) for (const pair of seiPairs(nal)) second.pair(pair);
    second.end();
    t.same(
      second.shown.map((caption) => caption.text),
      ['After the reconnect.', 'Last words.'],
      "the second link's captions, read by a decoder that starts in no mode",
    );

    const recordingId = (recording.body as { mediaSessionId: string }).mediaSessionId;
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: recordingId })).status, 200);
    const part = await waitFor('the recording part', async () => {
      const parts = (await gw.post('/rest-api/recording/find_all', { streamName: 'join' })).body as {
        fileName: string;
      }[];
      const file = parts[0] && join(records, parts[0].fileName);
      return file && (await probe(file).catch(() => undefined)) ? file : undefined;
    });
    // From between the two captions on: the keyframe before that point and what follows, as H.264.
    const fromS = ((firstSent + secondSent) / 2 - recordedFrom) / 1000;
    const middle = spawnSync(
      'ffmpeg',
      [
        ...['-v', 'error', '-ss', fromS.toFixed(2), '-i', part, '-an', '-c:v', 'copy'],
        ...['-bsf:v', 'h264_mp4toannexb', '-f', 'h264', 'pipe:1'],
      ],
      { maxBuffer: 64 << 20 },
    );
    t.ok(middle.stdout.length > 0, `ffmpeg read the part from its middle ${middle.stderr.toString()}`);
    const fromMiddle = new Cea608Reader();
    for (const pairs of annexBPairs(middle.stdout)) for (const pair of pairs) fromMiddle.pair(pair);
    fromMiddle.end();
    const shown = fromMiddle.shown.map((caption) => caption.text);
    t.ok(
      shown.includes('After the reconnect.') && shown.includes('Last words.'),
      `the recording read from ${fromS.toFixed(1)} s on: ${JSON.stringify(shown)}`,
    );
  },
);
