import t, { type Test } from 'tap';
import { mkdtemp, readdir, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { byteRange } from '../../src/http/routes/recording.js';
import { RecordingLibrary, recordingFileRequestSchema } from '../../src/recordings/library.js';
import { parseDestination } from '../../src/links/destination.js';
import { recordArgs, recordFailure, recordLinks } from '../../src/links/record-link.js';
import { recordingName, recordNameValues } from '../../src/links/record-names.js';
import { RECORD_NAME_TOKENS } from '../../src/config/sections/recordings.js';
import { parseConfig } from '../../src/config/load.js';

// Recording's rules: names, ffmpeg's arguments, why a recording ended, ranges, and the library's
// listing and retention over files laid out as a recording leaves them.

t.test('a recording is named by the pattern; parts follow with -001.mp4', async (t) => {
  const start = new Date('2026-11-24T10:22:33.456Z');
  t.equal(recordingName('{stream}-{start}', 'cam', 'a1b2c3d4-e5f6', start), 'cam-20261124T102233Z');
  t.equal(
    recordingName('{id}_{stream}', 'cam one/two', 'a1b2c3d4-e5f6', start),
    'a1b2c3d4_cam_one_two',
    'characters a file name cannot hold become _',
  );
  t.equal(
    recordingName('{stream}-{start}', '.hidden', 'a1b2c3d4', start),
    '_hidden-20261124T102233Z',
    'no hidden file',
  );
  const args = recordArgs('/rec', 'cam-20261124T102233Z', 600);
  t.equal(
    args.at(-1),
    '/rec/cam-20261124T102233Z-%03d.mp4',
    "written in the folder given (the recording's own, as ffmpeg's descriptor 3)",
  );
  t.match(
    args.join(' '),
    /-c copy .*-f segment -segment_time 600 -segment_start_number 1 .*movflags=\+frag_keyframe\+empty_moov/,
    'copied, cut into fragmented MP4 parts',
  );
});

t.test("Web Call Server's template tokens, the date and the time name a recording too", async (t) => {
  const start = new Date('2026-11-24T10:22:33.456Z');
  const id = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
  t.equal(
    recordingName('{streamName}-{mediaSessionId}', 'cam', id, start),
    `cam-${id}`,
    '{streamName} is {stream}, {mediaSessionId} the whole id',
  );
  t.equal(recordingName('{stream}-{startTime}', 'cam', id, start), 'cam-1795515753456', 'ms since 1970, as WCS');
  t.equal(recordingName('{stream}-{startTimeMillis}', 'cam', id, start), 'cam-1795515753456');
  t.equal(recordingName('{date}_{time}_{stream}', 'cam', id, start), '2026-11-24_10-22-33_cam', 'UTC');
  t.equal(recordingName('{id}', 'cam', id, start), 'a1b2c3d4');
  t.equal(
    recordingName('{mediaSessionId}.{streamName}', 'room#cam', '../$(x) y', start),
    '_.___x__y.room_cam',
    "every token's characters other than letters, digits, _ . - become _; no hidden file",
  );
  t.equal(recordingName('{stream}-{when}', 'cam', id, start), 'cam-_when_', 'an unknown token is no file name trick');
  const long = recordingName('{stream}{stream}{mediaSessionId}', 'c'.repeat(128), id, start);
  t.equal(long.length, 180, 'cut at 180 characters');
  t.ok(
    recordingFileRequestSchema.safeParse({ fileName: `${long}-100-1000.mp4` }).success,
    'its parts are names REST accepts',
  );
  for (const token of RECORD_NAME_TOKENS)
    t.notOk(recordingName(`{${token}}`, 'cam', id, start).includes('{'), `{${token}} is put in place`);
  t.same(
    Object.keys(recordNameValues('cam', id, start)).sort(),
    [...RECORD_NAME_TOKENS].sort(),
    'the configuration lets in the tokens recordingName knows',
  );
});

t.test('the pattern is checked by the configuration', async (t) => {
  t.throws(() => parseConfig({ record_file_pattern: '{start}' }), /record_file_pattern: must name the stream/);
  t.throws(() => parseConfig({ record_file_pattern: '../{stream}' }), /record_file_pattern/);
  t.throws(() => parseConfig({ record_file_pattern: '{stream}-{when}' }), /record_file_pattern/);
  t.equal(parseConfig({ record_file_pattern: 'rec_{id}.{stream}' }).record_file_pattern, 'rec_{id}.{stream}');
  for (const pattern of ['{date}/{time}-{stream}', '{streamName}*', '{StreamName}', '{streamName'])
    t.throws(() => parseConfig({ record_file_pattern: pattern }), /record_file_pattern/, pattern);
  const wcs = '{streamName}-{date}_{time}-{startTime}-{startTimeMillis}-{mediaSessionId}-{id}-{start}';
  t.equal(parseConfig({ record_file_pattern: wcs }).record_file_pattern, wcs, 'every token together');
  t.equal(parseConfig({ record_file_pattern: '{mediaSessionId}' }).record_file_pattern, '{mediaSessionId}');
  t.throws(
    () => parseConfig({ record_file_pattern: '{date}_{time}_{startTime}' }),
    /record_file_pattern: must name the stream \(\{stream\}, \{streamName\}\) or the push/,
    'a date and time alone do not tell recordings apart',
  );
});

t.test('record:// is a destination with no host and nothing secret', async (t) => {
  const d = parseDestination('record://', 'cam', { prefix: 'rtmp_', fullUrl: false });
  t.match(d, { protocol: 'record', host: '', redactedUrl: 'record://', secrets: [] });
  t.throws(
    () => parseDestination('record://x', 'cam', { prefix: '', fullUrl: false }),
    /rtmpUrl: a recording is asked for with record:\/\/, or record:\/\/\?storage=local/,
  );
});

t.test("why a recording ended, from ffmpeg's last lines", async (t) => {
  t.same(recordFailure(['[mp4 @ 0x1] Error writing trailer: No space left on device']), {
    reason: 'the disk of record_dir is full',
    kind: 'storage',
  });
  t.match(recordFailure(['/rec/x-001.mp4: Permission denied']), { reason: /cannot be written/, kind: 'rejected' });
  t.match(recordFailure(['something odd', 'Conversion failed!']), {
    reason: 'recording ended: Conversion failed!',
    kind: 'local',
  });
});

t.test('one byte range per request, as RFC 9110 reads it', async (t) => {
  t.same(byteRange('bytes=0-99', 1000), { start: 0, end: 99 });
  t.same(byteRange('bytes=900-', 1000), { start: 900, end: 999 });
  t.same(byteRange('bytes=-10', 1000), { start: 990, end: 999 });
  t.same(byteRange('bytes=-5000', 1000), { start: 0, end: 999 }, 'a suffix longer than the file: all of it');
  t.same(byteRange('bytes=500-5000', 1000), { start: 500, end: 999 }, 'an end past the file: to its end');
  t.equal(byteRange('bytes=1000-', 1000), 'unsatisfiable');
  t.equal(byteRange('bytes=-0', 1000), 'unsatisfiable');
  for (const whole of [undefined, 'items=0-1']) t.equal(byteRange(whole, 1000), undefined, `${whole}: the whole file`);
  for (const refused of [
    'bytes=5-3',
    'bytes=5-1',
    'bytes=-',
    'bytes=abc',
    'bytes=0-1,5-3',
    'bytes=2000-3000,4000-',
    `bytes=${Array.from({ length: 17 }, (_, i) => `${i}-${i}`).join(',')}`,
    'garbage',
  ]) {
    t.equal(byteRange(refused, 1000), 'unsatisfiable', `${refused.slice(0, 40)}: 416, not the whole file`);
  }
  t.same(byteRange('bytes=0-1,5-6', 1000), { start: 0, end: 6 }, 'several ranges: the one range covering them');
  t.same(
    byteRange('bytes=900-,-10, 2000-', 1000),
    { start: 900, end: 999 },
    'ranges past the end are left out of the cover',
  );
});

async function laidOut(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), 'recording-library-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  // Two parts of one recording, the second cut short; a third part of another, being written.
  await writeFile(
    join(dir, '.cam-a.json'),
    JSON.stringify({ stream: 'cam', mediaSessionId: 'p1', startedAt: hourAgo }),
  );
  // On the push's clock: a recording made again after a loss does not start at 0.
  await writeFile(join(dir, '.cam-a.csv'), 'cam-a-001.mp4,120.000000,130.040000\n');
  await writeFile(join(dir, 'cam-a-001.mp4'), Buffer.alloc(3000));
  await writeFile(join(dir, 'cam-a-002.mp4'), Buffer.alloc(1000));
  await writeFile(
    join(dir, '.other-b.json'),
    JSON.stringify({ stream: 'other', mediaSessionId: 'p2', startedAt: new Date().toISOString() }),
  );
  await writeFile(join(dir, 'other-b-001.mp4'), Buffer.alloc(500));
  await writeFile(join(dir, 'stray-001.mp4'), Buffer.alloc(10)); // not the gateway's: no .json
  await utimes(join(dir, 'cam-a-001.mp4'), new Date(hourAgo), new Date(hourAgo));
  return dir;
}

t.test("the library lists parts with their recording's stream, start, duration and state", async (t) => {
  const dir = await laidOut(t);
  const library = new RecordingLibrary(dir, { maxAgeHours: 0, maxMb: 0 }, 0o640, pino({ level: 'silent' }));
  library.follow({
    type: 'recording.started',
    file: 'other-b-001.mp4',
    stream: 'other',
    mediaSessionId: 'p2',
    startedAt: new Date().toISOString(),
  });
  const all = await library.list();
  t.match(all, [
    {
      fileName: 'cam-a-001.mp4',
      streamName: 'cam',
      mediaSessionId: 'p1',
      durationMs: 10040,
      size: 3000,
      state: 'finished',
    },
    { fileName: 'cam-a-002.mp4', durationMs: null, size: 1000, state: 'interrupted' },
    { fileName: 'other-b-001.mp4', state: 'recording' },
  ]);
  t.ok(
    Math.abs(Date.parse(all[0]!.startedAt) - (Date.now() - 3_600_000)) < 5000,
    'the first part began when its recording did (an hour ago), whatever the clock ffmpeg listed it on',
  );
  t.equal(
    Date.parse(all[1]!.startedAt) - Date.parse(all[0]!.startedAt),
    10040,
    'a part cut short began where the one before ended',
  );
  t.same(
    (await library.list({ streamName: 'other' })).map((r) => r.fileName),
    ['other-b-001.mp4'],
  );
  t.equal(all.length, 3, 'a file no recording of the gateway wrote is not listed');
});

t.test(
  'a recording past its 999th part: -1000.mp4 comes after -999.mp4, in the listing and for retention',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'recording-library-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await writeFile(
      join(dir, '.long.json'),
      JSON.stringify({
        stream: 'long',
        mediaSessionId: 'p1',
        startedAt: new Date(Date.now() - 86_400_000).toISOString(),
      }),
    );
    // The list holds the finished parts; the last two were cut short (a gateway killed, say).
    await writeFile(
      join(dir, '.long.csv'),
      ['long-998.mp4,99700.0,99800.0', 'long-999.mp4,99800.0,99900.0'].join('\n') + '\n',
    );
    for (const n of ['998', '999', '1000', '1001']) await writeFile(join(dir, `long-${n}.mp4`), Buffer.alloc(1000));
    const library = new RecordingLibrary(dir, { maxAgeHours: 0, maxMb: 0 }, 0o640, pino({ level: 'silent' }));
    const listed = await library.list();
    t.same(
      listed.map((r) => r.fileName),
      ['long-998.mp4', 'long-999.mp4', 'long-1000.mp4', 'long-1001.mp4'],
    );
    const starts = listed.map((r) => Date.parse(r.startedAt));
    t.same(
      starts.slice(1).map((at, i) => at - starts[i]!),
      [100_000, 100_000, 0],
      'a part not in the list begins where the last one listed ended',
    );
  },
);

t.test(
  'retention: parts past the age go, then the oldest while above the size; a part being written stays',
  async (t) => {
    const dir = await laidOut(t);
    const byAge = new RecordingLibrary(dir, { maxAgeHours: 0.5, maxMb: 0 }, 0o640, pino({ level: 'silent' }));
    byAge.follow({
      type: 'recording.started',
      file: 'other-b-001.mp4',
      stream: 'other',
      mediaSessionId: 'p2',
      startedAt: new Date().toISOString(),
    });
    await byAge.sweep();
    t.same(
      (await byAge.list()).map((r) => r.fileName),
      ['other-b-001.mp4'],
      'the hour-old recording gone, its .json and .csv too',
    );

    const dir2 = await laidOut(t);
    const bySize = new RecordingLibrary(
      dir2,
      { maxAgeHours: 0, maxMb: 2500 / 1048576 },
      0o640,
      pino({ level: 'silent' }),
    );
    await bySize.sweep();
    t.same(
      (await bySize.list()).map((r) => r.fileName),
      ['cam-a-002.mp4', 'other-b-001.mp4'],
      'the oldest part went, bringing the total under the limit',
    );
    await t.rejects(bySize.remove('cam-a-001.mp4'), { code: 'not_found' });
  },
);

t.test('an ffmpeg that cannot be started leaves nothing of the recording in record_dir, and says why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'record-spawn-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const open = recordLinks(
    {
      connectTimeoutMs: 1000,
      stopTimeoutMs: 1000,
      maxLagMs: 1000,
      sendBuffer: { enabled: false, startMs: 0, maxMs: 0, pollingMs: 10, maxBufferings: -1 },
      onBufferState: () => {},
      spawn: () => {
        throw new Error('spawn ffmpeg EAGAIN');
      },
      record: { dir, filePattern: '{stream}', partS: 60, minFreeMb: 1, fileMode: 0o640, dirMode: 0o750 },
    },
    { stream: 'cam', mediaSessionId: 'cam-push' },
    () => {},
  );
  await t.rejects(open(false), /EAGAIN/);
  t.same(await readdir(dir), [], 'no .writing folder, no .json');
});
