import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { decodePicture } from '../../kit/pictures.js';
import { probe } from '../../kit/probe.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { S3RVER_KEY_ID, S3Server } from '../../kit/s3-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { keyframeCached, pushWhenTaken } from '../helpers/pushes.js';
import { spellings } from '../helpers/spellings.js';
import { testFixture } from '../helpers/synthetic.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// Recordings uploaded to a real S3-compatible server (s3rver, on loopback): each part as it is
// finished while the recording goes on, read back and probed; the server stopped and started
// again, the gateway killed and started again: every part arrives whole, once.

t.teardown(() => stopAllProcesses());

/** s3rver checks the key id, not the secret: the canary goes through every request signed with it. */
const CANARY = 'CANARYs3secret8813';
const HOOK_SECRET = 'uploads-webhook-secret';

interface Part {
  fileName: string;
  state: string;
  storage: { state: string; key?: string; error?: string; local: boolean };
}

function storeConfig(s3: S3Server, overrides: Record<string, unknown> = {}): NonNullable<GatewayConfig['record_s3']> {
  return {
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    path_style: true,
    region: 'us-east-1',
    prefix: 'gateway/',
    access_key_id: S3RVER_KEY_ID,
    secret_access_key: CANARY,
    acl: 'private',
    keep_local: false,
    upload_by_default: true,
    ...overrides,
  } as NonNullable<GatewayConfig['record_s3']>;
}

/** A gateway of the test's process, or one of its own. */
type Poster = Pick<TestGateway, 'post'> | GatewayProcess;
const post = (gw: Poster, path: string, body: unknown): Promise<{ status: number; body: any }> =>
  gw instanceof GatewayProcess ? gw.request('POST', path, body) : gw.post(path, body);

async function parts(gw: Poster, stream: string): Promise<Part[]> {
  const found = await post(gw, '/rest-api/recording/find_all', { streamName: stream });
  return found.status === 200 ? (found.body as Part[]) : [];
}

async function tempDir(t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test(
  'each part uploaded while the recording goes on, probed from the bucket; the server away and back: none lost, none twice; no secret anywhere',
  async (t) => {
    const s3 = await S3Server.start();
    t.teardown(() => s3.stop());
    const hooks = await WebhookReceiver.start(HOOK_SECRET);
    t.teardown(() => hooks.stop());
    const records = await tempDir(t, 's3-records-');
    // record_hook: run once a part is in the bucket, with its key, while its file is still there.
    const hookDir = await tempDir(t, 's3-hook-');
    const hookScript = join(hookDir, 'on-record.sh');
    await writeFile(
      hookScript,
      `#!/bin/sh\n[ -f "$2" ] && here=yes || here=no\necho "$1|$2|$3|$4|$here" >> ${hookDir}/calls\n`,
      { mode: 0o755 },
    );
    const logLines: string[] = [];
    const gw = await startGateway(
      {
        record_hook: hookScript,
        // Thumbnails into the bucket too, beside the recordings.
        thumbnail_interval_s: 2,
        thumbnail_upload: true,
        thumbnail_dir: await tempDir(t, 's3-thumbnails-'),
        record_dir: records,
        record_min_free_mb: 1,
        record_part_s: 10,
        record_s3: storeConfig(s3),
        log_level: 'debug',
        webhooks: [
          {
            id: 'app',
            url: hooks.url,
            secret: HOOK_SECRET,
            events: [],
            timeout_ms: 2000,
            max_attempts: 3,
            queue_limit: 100,
          },
        ],
      },
      logLines,
    );
    t.teardown(() => gw.close());
    await gw.open();
    const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam');
    t.teardown(() => publisher.stop());
    await keyframeCached(gw, 'cam');
    const started = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: 'record://' });
    t.equal(started.status, 200, JSON.stringify(started.body));

    // The first part in the bucket while the second is being recorded, and gone from the disk.
    const first = await waitFor(
      'the first part uploaded while the recording goes on',
      async () => {
        const listed = await parts(gw, 'cam');
        return listed[0]?.storage.state === 'uploaded' && listed[1]?.state === 'recording' ? listed : undefined;
      },
      40_000,
    );
    t.match(first[0], { storage: { state: 'uploaded', key: `gateway/${first[0]!.fileName}`, local: false } });
    t.notOk((await readdir(records)).includes(first[0]!.fileName), 'its file deleted once the bucket confirmed it');
    const downloads = await tempDir(t, 's3-read-');
    const probed = await probe(await s3.download(first[0]!.storage.key!, downloads));
    t.same(probed.streams.map((s) => s.codec_name).sort(), ['aac', 'h264'], 'H.264 and AAC');
    const seconds = Number(probed.video.at(-1)!.pts_time) - Number(probed.video[0]!.pts_time);
    t.ok(seconds > 7 && seconds < 13, `about one part long (${seconds.toFixed(1)} s of video)`);

    // The server goes away: the part finished meanwhile fails, is told, and waits on the disk.
    await s3.pause();
    const failed = await waitFor(
      'a part failing to upload',
      async () => (await parts(gw, 'cam')).find((p) => p.storage.state === 'failed'),
      40_000,
    );
    t.match(failed.storage, { error: /cannot be reached/, local: true });
    const refused = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: 'record://?storage=s3' });
    t.match(
      refused,
      { status: 503, body: { field: 'record_s3.endpoint' } },
      'a new recording is refused, naming the setting',
    );
    const kept = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: 'record://?storage=local' });
    t.equal(kept.status, 200, 'one kept on this node starts all the same');
    await gw.post('/rest-api/push/terminate', { mediaSessionId: kept.body.mediaSessionId });
    await s3.resume();
    await waitFor(
      'the failed part uploaded once the server is back',
      async () => (await parts(gw, 'cam')).find((p) => p.fileName === failed.fileName)?.storage.state === 'uploaded',
      30_000,
    );
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId })).status, 200);
    const uploaded = await waitFor(
      'every part of the recording uploaded',
      async () => {
        const listed = (await parts(gw, 'cam')).filter((p) => p.storage.state !== 'local');
        return listed.length >= 3 && listed.every((p) => p.storage.state === 'uploaded') ? listed : undefined;
      },
      30_000,
    );
    const objects = (await s3.objects()).filter((o) => !o.key.startsWith('gateway/thumbnails/'));
    t.same(
      objects.map((o) => o.key).sort(),
      uploaded.map((p) => p.storage.key).sort(),
      'the bucket holds each part once, and nothing else',
    );
    const thumbnail = await decodePicture(await s3.download('gateway/thumbnails/cam.jpg', downloads));
    t.match(
      thumbnail,
      { width: 320, height: 180 },
      "the stream's thumbnail in the bucket, a picture of it (thumbnail_width)",
    );
    for (const part of uploaded)
      t.ok(objects.find((o) => o.key === part.storage.key)!.size > 10_000, `${part.fileName} whole`);

    const about = (type: string, file: string) =>
      hooks.delivered.filter((h) => h.type === type && h.body.data.file === file);
    t.ok(about('recording.upload_failed', failed.fileName).length >= 1, 'the failure told');
    t.match(about('recording.uploaded', failed.fileName), [
      { body: { data: { bucket: s3.bucket, key: failed.storage.key, stream: 'cam' } } },
    ]);
    t.equal(
      hooks.delivered.filter((h) => h.type === 'recording.uploaded').length,
      uploaded.length,
      'one webhook per part',
    );
    // The one kept on this node (?storage=local) has it at once, with no key.
    const calls = (await readFile(join(hookDir, 'calls'), 'utf8')).trim().split('\n').sort();
    const ids = new Map([
      ['gateway/', started.body.mediaSessionId as string],
      ['', kept.body.mediaSessionId as string],
    ]);
    t.same(
      calls,
      (await parts(gw, 'cam'))
        .map((p) => {
          const key = p.storage.key ?? '';
          return `cam|${join(records, p.fileName)}|${ids.get(key ? 'gateway/' : '')}|${key}|yes`;
        })
        .sort(),
      'record_hook run once a part: an uploaded one with its key, its file still there',
    );

    const everything = [
      ...logLines,
      JSON.stringify(hooks.received.map((h) => h.body)),
      JSON.stringify(await parts(gw, 'cam')),
      JSON.stringify(refused.body),
      await (await fetch(`${gw.baseUrl}/metrics`)).text(),
    ].join('\n');
    t.match(everything, /gateway_recording_upload_parts_total \d/, 'the uploads counted in /metrics');
    for (const spelling of spellings(CANARY)) t.notOk(everything.includes(spelling), `no ${spelling}`);
  },
);

t.test(
  'the gateway killed with a part not yet uploaded: the next start uploads it, once, and nothing is left on disk',
  async (t) => {
    const s3 = await S3Server.start();
    t.teardown(() => s3.stop());
    const records = await tempDir(t, 's3-killed-');
    const runDir = await tempDir(t, 's3-killed-run-');
    const killed = await GatewayProcess.start(
      join(runDir, 'killed.log'),
      {
        GATEWAY_RECORD_DIR: records,
        GATEWAY_RECORD_MIN_FREE_MB: '1',
        GATEWAY_RECORD_PART_S: '10',
        GATEWAY_RUN_DIR: runDir,
        GATEWAY_RECORD_S3: JSON.stringify({ ...storeConfig(s3), upload_by_default: false }),
      },
      ['--import', 'tsx'],
      'kit/server-from-source.ts',
    );
    t.teardown(() => killed.stop());
    await s3.pause(); // found at its start; then nothing can be uploaded while it runs
    const publisher = await SyntheticPublisher.publish(testFixture(), killed.baseUrl, 'gone');
    t.teardown(() => publisher.stop());
    const local = await pushWhenTaken(killed, 'gone', 'record://', 250);
    t.equal(local.status, 200, JSON.stringify(local.body));
    // The bucket is away: a recording asking for it is refused, naming the setting; the one kept here
    // was asked for without it (upload_by_default: false), and the next start uploads it as configured then.
    const refused = await post(killed, '/rest-api/push/startup', {
      streamName: 'gone',
      rtmpUrl: 'record://?storage=s3',
    });
    t.match(refused, { status: 503, body: { field: 'record_s3.endpoint' } });
    await waitFor(
      'a finished part',
      async () => (await parts(killed, 'gone')).some((p) => p.state === 'finished'),
      30_000,
    );
    // A multipart upload an earlier run would have begun: its record says so.
    const [part] = (await parts(killed, 'gone')).filter((p) => p.state === 'finished');
    await writeFile(
      join(records, `.${part!.fileName}.upload.json`),
      JSON.stringify({ key: `gateway/${part!.fileName}`, state: 'uploading', uploadId: 'an-upload-never-finished' }),
    );
    await killed.signal('SIGKILL');
    await publisher.stop();

    await s3.resume();
    const next = await startGateway({ record_dir: records, record_min_free_mb: 1, record_s3: storeConfig(s3) });
    t.teardown(() => next.close());
    await next.open();
    const done = await waitFor(
      'the part uploaded by the next start',
      async () =>
        (await parts(next, 'gone')).find((p) => p.fileName === part!.fileName && p.storage.state === 'uploaded'),
      30_000,
    );
    t.equal(done.storage.local, false);
    const objects = await s3.objects();
    t.same(
      objects.map((o) => o.key).filter((k) => k === done.storage.key),
      [done.storage.key],
      'in the bucket once',
    );
    t.notOk((await readdir(records)).includes(part!.fileName), 'and not on the disk');
    t.ok(
      objects.every((o) => o.key.startsWith('gateway/gone-')),
      'nothing else in the bucket',
    );
  },
);

t.test('a bucket that cannot be used is found at start, naming the setting', async (t) => {
  const s3 = await S3Server.start();
  t.teardown(() => s3.stop());
  const records = await tempDir(t, 's3-bad-');
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'wrong credentials',
      { access_key_id: 'NOT-A-KEY' },
      /record_s3\.access_key_id: the store refused the credentials/,
    ],
    ['an unknown bucket', { bucket: 'no-such-bucket' }, /record_s3\.bucket: there is no bucket no-such-bucket/],
    [
      'an endpoint that is not S3',
      { endpoint: 'http://127.0.0.1:9' },
      /record_s3\.endpoint: the store cannot be reached/,
    ],
  ];
  for (const [what, overrides, error] of cases) {
    const logLines: string[] = [];
    const gw = await startGateway({ record_dir: records, record_s3: storeConfig(s3, overrides) }, logLines);
    const opened = await gw.open().then(
      () => undefined,
      (e: Error) => e,
    );
    await gw.close();
    t.match(opened?.message, error, what);
    for (const spelling of spellings(CANARY))
      t.notOk(`${opened?.message}${logLines.join('')}`.includes(spelling), `${what}: no ${spelling}`);
  }
  const config = await startGateway({ record_s3: storeConfig(s3, { access_key_id: undefined }) }).catch(
    (e: Error) => e,
  );
  t.match(config, { message: /record_s3\.access_key_id/ }, 'a secret without its key id is a configuration error');
  const without = await startGateway({ record_dir: records });
  t.teardown(() => without.close());
  t.match(
    await without.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: 'record://?storage=s3' }),
    { status: 400, body: { field: 'rtmpUrl', message: /needs a bucket: the gateway has no record_s3/ } },
    'a recording asking for the bucket of a gateway without one',
  );
});
