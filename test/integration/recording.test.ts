import t from 'tap';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { probe } from '../../kit/probe.js';
import { now, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway } from '../helpers/gateway.js';
import { testFixture } from '../helpers/synthetic.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { awaitPushState } from '../helpers/pushes.js';

// `record://` pushes: the stream's H.264 untouched and its audio as AAC in fragmented MP4 parts
// under record_dir, split by duration, playable when ffmpeg is killed mid-part; listed, downloaded
// with ranges and deleted over REST; told by webhooks and to record_hook.

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'gateway-recordings-'));
const HOOK_SECRET = 'recording-webhook-secret';
const hooks = await WebhookReceiver.start(HOOK_SECRET);
// record_hook: a script that writes down how it was called, one line a part.
const hookDir = await mkdtemp(join(tmpdir(), 'gateway-record-hook-'));
const hookCalls = join(hookDir, 'calls');
const hookScript = join(hookDir, 'on-record.sh');
await writeFile(
  hookScript,
  `#!/bin/sh\nprintf '%s|%s|%s|%s|%s\\n' "$#" "$1" "$2" "$3" "$RECORD_DURATION_MS" >> ${hookCalls}\n`,
);
await chmod(hookScript, 0o755);
const gw = await startGateway({
  record_dir: dir,
  record_part_s: 10,
  record_min_free_mb: 1,
  webrtc_media_timeout_ms: 2000,
  record_hook: hookScript,
  record_hook_timeout_s: 10,
  webhooks: [
    {
      id: 'app',
      url: hooks.url,
      secret: HOOK_SECRET,
      events: [],
      timeout_ms: 5000,
      max_attempts: 8,
      queue_limit: 1000,
    },
  ],
});
let publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'reccam');
t.teardown(async () => {
  await publisher.stop();
  await gw.close();
  await hooks.stop();
  await rm(dir, { recursive: true, force: true });
  await rm(hookDir, { recursive: true, force: true });
});

interface Listed {
  fileName: string;
  streamName: string;
  mediaSessionId: string;
  startedAt: string;
  durationMs: number | null;
  size: number;
  state: string;
}
const listed = async (): Promise<Listed[]> => {
  const res = await gw.post('/rest-api/recording/find_all', { streamName: 'reccam' });
  return res.status === 200 ? res.body : [];
};
const download = (fileName: string, range?: string): Promise<Response> =>
  fetch(`${gw.baseUrl}/rest-api/recording/download/${fileName}`, { headers: range ? { range } : {} });
/** The recording ffmpeg's process, found by its output folder. */
const recorderPid = async (): Promise<number | undefined> => {
  const { stdout } = await run('pgrep', ['-f', `segment_list /proc/self/fd/3/.reccam-`]).catch(() => ({ stdout: '' }));
  return stdout.trim() ? Number(stdout.trim().split('\n')[0]) : undefined;
};

let pushId = '';
t.test(
  'a record:// push writes the stream into an MP4 part: H.264 as published, AAC, readable while written',
  async (t) => {
    const res = await gw.post('/rest-api/push/startup', { streamName: 'reccam', rtmpUrl: 'record://' });
    t.equal(res.status, 200, JSON.stringify(res.body));
    t.match(res.body, { state: 'running', rtmpUrl: 'record://' });
    pushId = res.body.mediaSessionId;
    await waitFor('a part of 200 KB', async () => (await listed()).some((r) => r.size > 200_000), 20_000);
    const [part] = await listed();
    t.match(part, { streamName: 'reccam', mediaSessionId: pushId, state: 'recording', durationMs: null });
    t.match(part!.fileName, /^reccam-\d{8}T\d{6}Z-001\.mp4$/, 'named by stream and start time');
    const recorded = await probe(join(dir, part!.fileName));
    t.match(
      recorded.streams.map((s) => [s.codec_type, s.codec_name]).sort(),
      [
        ['audio', 'aac'],
        ['video', 'h264'],
      ],
      'H.264 and AAC',
    );
    t.match(
      recorded.streams.find((s) => s.codec_type === 'video'),
      { width: 1280, height: 720 },
      "the publisher's picture, not transcoded",
    );
    t.ok(recorded.video[0]!.flags.startsWith('K'), 'a keyframe first');
    await waitFor(
      'recording.started told',
      () => hooks.delivered.some((h) => h.type === 'recording.started' && h.body.data.file === part!.fileName),
      10_000,
    );
    const found = (await gw.post('/rest-api/push/find', { streamName: 'reccam' })).body;
    t.match(
      found,
      [{ mediaSessionId: pushId, rtmpUrl: 'record://', state: 'running' }],
      'listed in find like any push',
    );
    t.equal((await gw.post('/rest-api/push/mute', { mediaSessionId: pushId })).status, 200, 'audio commands apply');
    t.equal((await gw.post('/rest-api/push/unmute', { mediaSessionId: pushId })).status, 200);
  },
);

t.test('split into parts of record_part_s, each listed with its duration once finished', async (t) => {
  await waitFor('a second part', async () => (await listed()).length >= 2, 30_000);
  const [first, second] = await listed();
  t.match(first, { state: 'finished', fileName: /-001\.mp4$/ });
  t.ok(
    first!.durationMs! >= 9000 && first!.durationMs! <= 13_000,
    `the first part lasts ${first!.durationMs} ms (parts of 10 s, cut at keyframes)`,
  );
  t.match(second, { state: 'recording', fileName: /-002\.mp4$/ });
  t.ok(Date.parse(second!.startedAt) > Date.parse(first!.startedAt), 'the second starts later');
  await waitFor(
    'recording.finished told',
    () => hooks.delivered.some((h) => h.type === 'recording.finished' && h.body.data.file === first!.fileName),
    10_000,
  );
  const hook = hooks.delivered.find((h) => h.type === 'recording.finished')!;
  t.match(hook.body.data, {
    stream: 'reccam',
    mediaSessionId: pushId,
    file: first!.fileName,
    durationMs: first!.durationMs,
  });
  await waitFor(
    'the second part written into',
    async () => ((await listed()).find((r) => r.fileName === second!.fileName)?.size ?? 0) > 100_000,
    20_000,
  );
  const second2 = await probe(join(dir, second!.fileName));
  t.ok(second2.video[0]!.flags.startsWith('K'), 'the second part starts at a keyframe');
});

t.test('record_hook is run for a finished part with its stream, its path and its push', async (t) => {
  const [first] = await listed();
  const path = join(dir, first!.fileName);
  const calls = async (): Promise<string[][]> =>
    (await readFile(hookCalls, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('|'));
  const call = await waitFor('the hook run for the first part', async () => (await calls()).find((c) => c[2] === path));
  t.same(call, ['3', 'reccam', path, pushId, String(first!.durationMs)]);
  const writing = join(dir, (await listed()).find((r) => r.state === 'recording')!.fileName);
  t.notOk(
    (await calls()).some((c) => c[2] === writing),
    'not for the part still being written',
  );
  const recorded = await probe(call[2]!);
  t.ok(recorded.video.length > 0 && recorded.video[0]!.flags.startsWith('K'), 'the file it is given plays');
});

t.test('a part is downloaded whole or by ranges', async (t) => {
  const [first] = await listed();
  const whole = await download(first!.fileName);
  t.equal(whole.status, 200);
  t.equal(whole.headers.get('accept-ranges'), 'bytes');
  t.equal(whole.headers.get('content-type'), 'video/mp4');
  t.equal((await whole.arrayBuffer()).byteLength, first!.size, 'the whole file');
  const head = await download(first!.fileName, 'bytes=0-99');
  t.equal(head.status, 206);
  t.equal(head.headers.get('content-range'), `bytes 0-99/${first!.size}`);
  const bytes = Buffer.from(await head.arrayBuffer());
  t.equal(bytes.length, 100);
  t.equal(bytes.subarray(4, 8).toString(), 'ftyp', 'an MP4 from its first box');
  const tail = await download(first!.fileName, 'bytes=-10');
  t.equal(tail.status, 206);
  t.equal((await tail.arrayBuffer()).byteLength, 10, 'the last 10 bytes');
  const past = await download(first!.fileName, `bytes=${first!.size}-`);
  t.equal(past.status, 416);
  t.equal(past.headers.get('content-range'), `bytes */${first!.size}`);
  await past.arrayBuffer();
  t.equal((await download('reccam-nothing-001.mp4')).status, 404);
  const bad = await download('..%2Fgateway.yml');
  t.equal(bad.status, 400, "a name that is not a recording's");
  t.match(await bad.json(), { field: 'fileName' });
});

t.test(
  'the publisher lost: standby, the still picture recorded in the same part; back live in it when the publisher returns',
  async (t) => {
    const writing = (await listed()).find((r) => r.state === 'recording')!;
    await publisher.vanish();
    await awaitPushState(gw, 'reccam', 'standby', [], 10_000);
    const sizeOf = async (): Promise<number> =>
      (await listed()).find((r) => r.fileName === writing.fileName)?.size ?? 0;
    const atStandby = await sizeOf();
    await waitFor('the still picture written into the part', async () => (await sizeOf()) > atStandby + 10_000, 15_000);
    publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'reccam');
    const back = await awaitPushState(gw, 'reccam', 'running', [], 15_000);
    t.match(back, { mediaSessionId: pushId, counters: { reconnects: 0 } }, 'the same push, never reconnected');
    const recordings = new Set((await listed()).map((r) => r.fileName.replace(/-\d{3}\.mp4$/, '')));
    t.equal(recordings.size, 1, 'one recording throughout');
    t.equal((await listed()).find((r) => r.state === 'recording')?.fileName.startsWith([...recordings][0]!), true);
  },
);

t.test(
  'ffmpeg killed mid-part: the part plays up to where it was cut; the push goes on in a new recording',
  async (t) => {
    const pid = await recorderPid();
    t.ok(pid, 'the recording ffmpeg');
    const cut = (await listed()).find((r) => r.state === 'recording')!;
    process.kill(pid!, 'SIGKILL');
    await waitFor(
      'a new recording',
      async () =>
        (await listed()).some(
          (r) => r.state === 'recording' && r.fileName.endsWith('-001.mp4') && r.startedAt > cut.startedAt,
        ),
      20_000,
    );
    const after = (await listed()).find((r) => r.fileName === cut.fileName)!;
    t.match(after, { state: 'interrupted', durationMs: null }, 'told as cut short');
    const played = await probe(join(dir, cut.fileName));
    t.ok(
      played.video.length > 10 && played.audio.length > 10,
      `${played.video.length} video and ${played.audio.length} audio packets read back`,
    );
    t.match(await gw.post('/rest-api/push/find', { streamName: 'reccam' }), {
      body: [{ mediaSessionId: pushId, state: 'running', counters: { reconnects: 1 } }],
    });
  },
);

t.test('terminated: the last part is finished and told; deleted over REST, a part being written is not', async (t) => {
  const writing = (await listed()).find((r) => r.state === 'recording')!;
  const busy = await gw.post('/rest-api/recording/delete', { fileName: writing.fileName });
  t.match(busy, { status: 409, body: { message: /being recorded/ } });
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: pushId })).status, 200);
  await waitFor(
    'recording.finished for the last part',
    () => hooks.delivered.some((h) => h.type === 'recording.finished' && h.body.data.file === writing.fileName),
    10_000,
  );
  await waitFor('no recording ffmpeg', async () => (await recorderPid()) === undefined, 10_000);
  const last = (await listed()).find((r) => r.fileName === writing.fileName)!;
  t.equal(last.state, 'finished');
  t.ok(last.durationMs! > 0, `lasts ${last.durationMs} ms`);

  const all = await listed();
  for (const part of all)
    t.equal(
      (await gw.post('/rest-api/recording/delete', { fileName: part.fileName })).status,
      200,
      `${part.fileName} deleted`,
    );
  t.equal((await gw.post('/rest-api/recording/find_all', {})).status, 404, 'none left');
  t.same(
    (await readdir(dir)).filter((f) => !f.startsWith('.') || f.endsWith('.json') || f.endsWith('.csv')),
    [],
    'nor what the recordings wrote beside them',
  );
  t.equal(
    (await gw.post('/rest-api/recording/delete', { fileName: all[0]!.fileName })).status,
    404,
    'deleted twice: 404',
  );
  t.match(await gw.post('/rest-api/recording/delete', { fileName: '../etc/passwd' }), {
    status: 400,
    body: { field: 'fileName' },
  });
});

t.test(
  'a recording started long after the keyframe (the video cached since comes first, at once) has its sound',
  async (t) => {
    await waitFor(
      'the last keyframe sent 1.2 s ago',
      () => {
        const last = [...publisher.frames].reverse().find((f) => f.key);
        return last !== undefined && now() - last.sentAt > 1200;
      },
      10_000,
      10,
    );
    const res = await gw.post('/rest-api/push/startup', { streamName: 'reccam', rtmpUrl: 'record://' });
    t.equal(res.status, 200, JSON.stringify(res.body));
    await waitFor('a part of 400 KB', async () => (await listed()).some((r) => r.size > 400_000), 20_000);
    const [part] = await listed();
    const recorded = await probe(join(dir, part!.fileName));
    t.same(recorded.streams.map((s) => s.codec_type).sort(), ['audio', 'video'], 'its picture and its sound');
    t.ok(recorded.audio.length > 10, `${recorded.audio.length} audio packets`);
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId })).status, 200);
    await waitFor('no recording ffmpeg', async () => (await recorderPid()) === undefined, 10_000);
    await waitFor('the part finished', async () => (await listed()).every((r) => r.state !== 'recording'), 10_000);
    for (const { fileName } of await listed())
      t.equal((await gw.post('/rest-api/recording/delete', { fileName })).status, 200);
  },
);

t.test('record:// takes nothing else; a push check has nothing to check', async (t) => {
  t.match(await gw.post('/rest-api/push/startup', { streamName: 'reccam', rtmpUrl: 'record://elsewhere' }), {
    status: 400,
    body: { field: 'rtmpUrl', message: /a recording is asked for with record:\/\/, or record:\/\/\?storage=local/ },
  });
  t.match(await gw.post('/rest-api/push/check', { rtmpUrl: 'record://' }), { status: 400, body: { field: 'rtmpUrl' } });
});

t.test('a disk below record_min_free_mb: no recording starts, saying why; nothing left running', async (t) => {
  const full = await startGateway({ record_dir: dir, record_min_free_mb: 100_000_000 });
  t.teardown(() => full.close());
  const p = await SyntheticPublisher.publish(testFixture(), full.baseUrl, 'fullcam');
  t.teardown(() => p.stop());
  const res = await full.post('/rest-api/push/startup', { streamName: 'fullcam', rtmpUrl: 'record://' });
  t.match(
    res,
    {
      status: 507,
      body: { error: 'insufficient_storage', message: /has \d+ MB free, less than record_min_free_mb \(100000000\)/ },
    },
    JSON.stringify(res.body),
  );
  t.equal(full.ffmpeg.count, 0, 'no ffmpeg left');
});

// A real disk filling up: a 3 MB tmpfs the test mounts (as root; elsewhere this part is skipped).
t.test(
  'the disk fills while recording: the recording ends cleanly saying why; the gateway and a push of the same stream go on',
  { skip: process.getuid?.() === 0 ? false : 'mounting a small disk needs root' },
  async (t) => {
    const small = join(dir, 'small');
    await mkdir(small);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', small]);
    t.teardown(() => run('umount', [small]).then(() => {}));
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const gw2 = await startGateway({ record_dir: small, record_min_free_mb: 1 });
    t.teardown(() => gw2.close());
    const p = await SyntheticPublisher.publish(testFixture(), gw2.baseUrl, 'diskcam');
    t.teardown(() => p.stop());
    const pushed = await gw2.post('/rest-api/push/startup', { streamName: 'diskcam', rtmpUrl: nginx.url() });
    t.equal(pushed.status, 200, JSON.stringify(pushed.body));
    const recording = await gw2.post('/rest-api/push/startup', { streamName: 'diskcam', rtmpUrl: 'record://' });
    t.equal(recording.status, 200, JSON.stringify(recording.body));
    const state = async (id: string): Promise<{ state: string; lastError?: string }> =>
      (
        (await gw2.post('/rest-api/push/find', { streamName: 'diskcam' })).body as {
          mediaSessionId: string;
          state: string;
          lastError?: string;
        }[]
      ).find((x) => x.mediaSessionId === id)!;
    await waitFor(
      'the recording failed',
      async () => (await state(recording.body.mediaSessionId)).state === 'failed',
      60_000,
    );
    t.match(await state(recording.body.mediaSessionId), {
      lastError: /the disk of record_dir (has \d+ MB free, less than record_min_free_mb \(1\)|is full)/,
    });
    const files = (await readdir(small)).filter((f) => f.endsWith('.mp4'));
    t.ok(files.length >= 1, `${files.length} part(s) written`);
    const played = await probe(join(small, files[0]!));
    t.ok(
      played.video.length > 10,
      `the part written before the disk filled plays: ${played.video.length} video packets`,
    );
    t.match(await state(pushed.body.mediaSessionId), { state: 'running' }, 'the RTMP push of the same stream runs on');
    t.equal((await fetch(`${gw2.baseUrl}/health`)).status, 200, 'the gateway answers');
    await waitFor(
      'no recording ffmpeg',
      async () =>
        (await run('pgrep', ['-f', `segment_list /proc/self/fd/3/.diskcam-`]).catch(() => ({ stdout: '' }))).stdout ===
        '',
      10_000,
    );
  },
);
