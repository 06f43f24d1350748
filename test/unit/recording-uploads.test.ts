import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { waitFor } from '../../kit/processes.js';
import { parseConfig } from '../../src/config/load.js';
import type { UploadEvent } from '../../src/plane/lifecycle.js';
import { Bucket, partSizeFor } from '../../src/recordings/bucket.js';
import { readUploadRecord, RecordingUploads, uploadFileOf } from '../../src/recordings/uploads.js';

const CANARY = 'CANARY-s3-secret-0123456789';
const s3 = mockClient(S3Client);
t.beforeEach(() => s3.reset());
t.teardown(() => s3.restore());

function bucket(): Bucket {
  const config = parseConfig({
    record_s3: {
      bucket: 'recordings',
      endpoint: 'http://127.0.0.1:9',
      path_style: true,
      prefix: 'gw/',
      access_key_id: 'AKIDCANARY',
      secret_access_key: CANARY,
    },
  });
  return Bucket.fromConfig(config)!;
}

function refusal(name: string, status: number, message: string): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status < 500 ? 'client' : 'server',
    $metadata: { httpStatusCode: status },
    message,
  });
}

t.test('parts of a file: 8 MiB at least, and never 10,000 of them (a day at 6 Mb/s is ~65 GB)', async (t) => {
  t.equal(partSizeFor(1000), 8 * 1024 * 1024);
  const day = 65e9;
  t.ok(day / partSizeFor(day) < 10_000, `${Math.ceil(day / partSizeFor(day))} parts`);
  t.equal(partSizeFor(day) % (1024 * 1024), 0, 'whole MiB');
});

t.test('a bucket that cannot be used says why, naming the setting, and never the credentials', async (t) => {
  const b = bucket();
  t.teardown(() => b.close());
  s3.on(HeadBucketCommand).rejects(refusal('InvalidAccessKeyId', 403, `key AKIDCANARY with ${CANARY} refused`));
  const refused = await b.check().then(
    () => undefined,
    (error: { field: string; message: string }) => error,
  );
  t.match(refused, { field: 'record_s3.access_key_id', message: /refused the credentials \(403/ });
  t.notMatch(refused!.message, /CANARY/);
  s3.on(HeadBucketCommand).rejects(refusal('NotFound', 404, 'not found'));
  await t.rejects(b.check(), { field: 'record_s3.bucket', message: /no bucket recordings/ });
  s3.on(HeadBucketCommand).rejects(
    Object.assign(new Error(`connect ECONNREFUSED ${CANARY}`), { code: 'ECONNREFUSED' }),
  );
  const unreachable = await b.check().catch((error: Error & { field: string }) => error);
  t.match(unreachable, { field: 'record_s3.endpoint', message: /cannot be reached \(ECONNREFUSED\)/ });
  t.notMatch(unreachable!.message, /CANARY/, 'the secret is masked even where the error quoted it');
});

async function partDir(t: Test): Promise<{ dir: string; file: string; size: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'uploads-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = 'cam-20261129T000000Z-001.mp4';
  await writeFile(join(dir, file), Buffer.alloc(4096, 1));
  return { dir, file, size: 4096 };
}

function uploads(b: Bucket, dir: string, events: UploadEvent[]): RecordingUploads {
  return new RecordingUploads(
    b,
    dir,
    0o640,
    { uploaded: () => {}, failed: () => {} },
    (event) => events.push(event),
    pino({ level: 'silent' }),
    async () => {},
    () => 0,
  );
}

/** Uploads into `dir`, closed with the test, and what they tell. */
function started(t: Test, dir: string): { events: UploadEvent[]; up: RecordingUploads } {
  const events: UploadEvent[] = [];
  const up = uploads(bucket(), dir, events);
  t.teardown(() => up.close());
  return { events, up };
}

t.test(
  'a part an earlier run was uploading: its multipart upload aborted, the part sent again, confirmed, then deleted',
  async (t) => {
    const { dir, file, size } = await partDir(t);
    await writeFile(
      uploadFileOf(dir, file),
      JSON.stringify({ key: `gw/${file}`, state: 'uploading', uploadId: 'mpu-1' }),
    );
    s3.on(AbortMultipartUploadCommand).resolves({});
    s3.on(PutObjectCommand).resolves({ ETag: '"e"' });
    s3.on(HeadObjectCommand).resolves({ ContentLength: size });
    const { events, up } = started(t, dir);
    await up.resume([{ file, stream: 'cam', mediaSessionId: 'm1' }]);
    await waitFor('the part uploaded', () => events.length === 1);
    t.match(s3.commandCalls(AbortMultipartUploadCommand)[0]!.args[0].input, {
      Bucket: 'recordings',
      Key: `gw/${file}`,
      UploadId: 'mpu-1',
    });
    t.match(s3.commandCalls(PutObjectCommand)[0]!.args[0].input, {
      Bucket: 'recordings',
      Key: `gw/${file}`,
      ACL: 'private',
    });
    t.match(events[0], {
      type: 'recording.uploaded',
      key: `gw/${file}`,
      size,
      bucket: 'recordings',
      stream: 'cam',
      attempt: 1,
    });
    await waitFor('the local file deleted', () =>
      access(join(dir, file)).then(
        () => false,
        () => true,
      ),
    );
    t.match(await readUploadRecord(dir, file), { state: 'uploaded', key: `gw/${file}`, size, keptLocal: false });
    t.equal(up.queued, 0);
  },
);

t.test('a failed attempt is told and tried again; a part the bucket holds short of is not confirmed', async (t) => {
  const { dir, file, size } = await partDir(t);
  s3.on(PutObjectCommand)
    .rejectsOnce(refusal('InternalError', 503, 'slow down'))
    .resolves({ ETag: '"e"' });
  s3.on(HeadObjectCommand)
    .resolvesOnce({ ContentLength: size - 1 })
    .resolves({ ContentLength: size });
  const { events, up } = started(t, dir);
  await up.add({ file, stream: 'cam', mediaSessionId: 'm1' });
  await waitFor('the part uploaded', () => events.some((e) => e.type === 'recording.uploaded'), 20_000);
  t.same(
    events.map((e) => [e.type, e.attempt]),
    [
      ['recording.upload_failed', 1],
      ['recording.upload_failed', 2],
      ['recording.uploaded', 3],
    ],
  );
  t.match(events[0], { reason: /the store failed \(503/, field: 'record_s3.endpoint' });
  t.match(events[1], { reason: /holds 4095 bytes of the 4096 sent/ });
  const told = JSON.stringify(events) + (await readFile(uploadFileOf(dir, file), 'utf8'));
  t.notMatch(told, /CANARY/);
});

t.test(
  'a part over 8 MiB goes in pieces: its multipart upload recorded as it begins, aborted before the next attempt when one fails',
  async (t) => {
    const { dir, file } = await partDir(t);
    const size = 17 * 1024 * 1024; // three pieces of 8 MiB at most
    await writeFile(join(dir, file), Buffer.alloc(size, 2));
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'mpu-2' });
    s3.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3.on(CompleteMultipartUploadCommand)
      .rejectsOnce(refusal('InternalError', 500, 'try again'))
      .resolves({ ETag: '"whole"' });
    s3.on(AbortMultipartUploadCommand).resolves({});
    s3.on(HeadObjectCommand).resolves({ ContentLength: size });
    const { events, up } = started(t, dir);
    await up.add({ file, stream: 'cam', mediaSessionId: 'm1' });
    await waitFor('the part uploaded', () => events.some((e) => e.type === 'recording.uploaded'), 20_000);
    t.same(
      events.map((e) => e.type),
      ['recording.upload_failed', 'recording.uploaded'],
    );
    t.equal(s3.commandCalls(UploadPartCommand).length, 6, 'three pieces an attempt');
    t.ok(
      s3.commandCalls(UploadPartCommand).every((c) => (c.args[0].input.Body as Buffer).length <= 8 * 1024 * 1024),
      'none over 8 MiB',
    );
    t.match(
      s3.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input),
      [{ Key: `gw/${file}`, UploadId: 'mpu-2' }],
      "the first attempt's upload aborted once, before the second",
    );
    t.match(await readUploadRecord(dir, file), { state: 'uploaded', bucket: 'recordings', size });
  },
);

t.test(
  'a record that cannot be written (a full disk): the part is not deleted, and is sent again next time',
  async (t) => {
    const { dir, file, size } = await partDir(t);
    s3.on(PutObjectCommand).resolves({ ETag: '"e"' });
    s3.on(HeadObjectCommand).resolves({ ContentLength: size });
    // A folder where the record's temporary file would go: every write of the record fails.
    await mkdir(`${uploadFileOf(dir, file)}.new`);
    await writeFile(join(`${uploadFileOf(dir, file)}.new`, 'x'), 'x');
    const { events, up } = started(t, dir);
    await up.add({ file, stream: 'cam', mediaSessionId: 'm1' });
    await waitFor('the part uploaded', () => events.some((e) => e.type === 'recording.uploaded'));
    await waitFor('done with it', () => up.queued === 0);
    t.ok(
      await access(join(dir, file)).then(
        () => true,
        () => false,
      ),
      'the file stays: its record does not say uploaded',
    );
  },
);
