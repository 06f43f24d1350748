import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { sleep, waitFor } from '../kit/processes.js';
import { S3RVER_KEY_ID, S3Server } from '../kit/s3-server.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { cpuWithReaped, rssMb } from './proc.js';
import { parseConfig } from '../src/config/load.js';
import { Bucket } from '../src/recordings/bucket.js';
import type { Bench } from './report.js';

/** A part every this many seconds: several are uploaded within the window. */
const PART_S = 10;
/** The bitrate the figure is for: a 1080p stream as platforms ask for it. */
const REFERENCE_MBPS = 6;

interface Window {
  cpu: number;
  /** The main thread's process memory at the window's end, less at its start (MB). */
  rssGrowthMb: number;
  rssMb: number;
  /** Bytes the bucket holds at the end. */
  uploadedBytes: number;
}

/**
 * One stream recorded in parts of `PART_S` seconds, kept on the disk (`storage=local`) or
 * uploaded to an S3-compatible server on loopback as each part is finished: the gateway's CPU
 * (its process, its spawner with the recordings' ffmpeg, its media workers) over `seconds`.
 */
async function recordOne(bench: Bench, fixture: Fixture, storage: 'local' | 's3', seconds: number): Promise<Window> {
  const s3 = await S3Server.start();
  const records = await mkdtemp(join(tmpdir(), 'bench-uploads-'));
  const gateway = await GatewayProcess.start(join(bench.work, `gateway-uploads-${storage}.log`), {
    GATEWAY_RECORD_DIR: records,
    GATEWAY_RECORD_MIN_FREE_MB: '1',
    GATEWAY_RECORD_PART_S: String(PART_S),
    GATEWAY_RECORD_S3: JSON.stringify({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      path_style: true,
      access_key_id: S3RVER_KEY_ID,
      secret_access_key: S3RVER_KEY_ID,
    }),
  });
  let publisher: SyntheticPublisher | undefined;
  try {
    publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'uploads');
    await waitFor('the recording started', async () => {
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName: 'uploads',
        rtmpUrl: `record://?storage=${storage}`,
      });
      return reply.status === 200;
    });
    await sleep(PART_S * 1000); // the first part finished (and, uploading, its upload under way)
    const pids = await gateway.ownPids();
    const before = pids.map(cpuWithReaped);
    const rssBefore = rssMb(gateway.pid);
    await sleep(seconds * 1000);
    const used = pids.map(cpuWithReaped).reduce((sum, cpu, i) => sum + cpu - before[i]!, 0);
    const rss = rssMb(gateway.pid);
    const uploadedBytes = (await s3.objects()).reduce((sum, o) => sum + o.size, 0);
    return { cpu: (used / seconds) * 100, rssGrowthMb: rss - rssBefore, rssMb: rss, uploadedBytes };
  } finally {
    await publisher?.stop();
    await gateway.stop();
    await rm(records, { recursive: true, force: true });
    await s3.stop();
  }
}

/** The file the upload path is measured with: about 80 s of a 6 Mb/s stream. */
const PATH_FILE_BYTES = 60 * 1024 * 1024;
/** Uploads of it timed, after one that is not. */
const PATH_UPLOADS = 3;

/**
 * The CPU (% of a core) the upload path itself costs per 6 Mb/s of recording: the gateway's
 * `Bucket.upload` (the SDK's multipart upload, pieces read from the file) of a 60 MB file in this
 * process, three times after a first not counted, timed with its own CPU use, to s3rver in a process of its own so that the server's share
 * is not counted. Precise where the gateway-level difference is within the spread of two runs.
 */
async function uploadPath(): Promise<number> {
  const server = fork(new URL('./s3-process.ts', import.meta.url).pathname, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  server.on('error', () => {}); // a stop sent after it ended: it is gone either way
  const exited = once(server, 'exit');
  const dir = await mkdtemp(join(tmpdir(), 'bench-upload-path-'));
  try {
    const started = once(server, 'message') as Promise<[{ endpoint: string; bucket: string }]>;
    const first = await Promise.race([started, exited.then(() => undefined)]);
    if (!first) throw new Error('the S3 server ended before it started');
    const [{ endpoint, bucket }] = first;
    const config = parseConfig({
      record_s3: { bucket, endpoint, path_style: true, access_key_id: S3RVER_KEY_ID, secret_access_key: S3RVER_KEY_ID },
    });
    const store = Bucket.fromConfig(config)!;
    await store.check(); // the SDK loaded and the bucket found: not counted
    const file = join(dir, 'part.mp4');
    const handle = await open(file, 'w');
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < PATH_FILE_BYTES / chunk.length; i++) await handle.write(chunk.fill(i));
    await handle.close();
    const upload = (name: string): Promise<void> =>
      store.upload(file, store.key(name), PATH_FILE_BYTES, () => {}, new AbortController().signal);
    await upload('warm.mp4'); // the first connection and the code's first run: a gateway uploads part after part
    const before = process.cpuUsage();
    for (let i = 0; i < PATH_UPLOADS; i++) await upload(`part-${i}.mp4`);
    const used = process.cpuUsage(before);
    store.close();
    const cpuS = (used.user + used.system) / 1e6;
    const streamS = (PATH_UPLOADS * PATH_FILE_BYTES * 8) / (REFERENCE_MBPS * 1e6);
    return (cpuS / streamS) * 100;
  } finally {
    if (server.connected) server.send('stop');
    if (server.exitCode === null && server.signalCode === null) await exited;
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What uploading recordings costs: one stream recorded to the disk only, then recorded and each
 * part uploaded as it is finished, the gateway's CPU over the same window in both; the difference
 * is the uploads', also scaled to a 6 Mb/s stream by the bytes uploaded. The S3 server runs in the
 * benchmark's own process and is not counted. That difference is within two runs' spread, so the
 * upload path is also timed alone (`uploadPath`), and the target applies to it.
 */
export async function uploadCost(bench: Bench, fixture: Fixture): Promise<void> {
  const seconds = bench.quick ? 20 : 60;
  console.log(`\nUploads: one stream recorded in ${PART_S} s parts, on disk against uploaded (${seconds} s each)`);
  const local = await recordOne(bench, fixture, 'local', seconds);
  const uploaded = await recordOne(bench, fixture, 's3', seconds);
  const extra = uploaded.cpu - local.cpu;
  const mbps = (uploaded.uploadedBytes * 8) / 1e6 / (seconds + PART_S);
  bench.details.uploads = { local, uploaded, seconds, mbps };
  bench.report('uploads: one recording on disk, gateway CPU', local.cpu, '% of a core');
  bench.report('uploads: the same, each part uploaded (above on disk)', extra, '% of a core', { noiseFloor: 0.3 });
  bench.report('uploads: uploaded, as the stream went', mbps, 'Mb/s');
  bench.report(
    `uploads: scaled to a ${REFERENCE_MBPS} Mb/s stream`,
    mbps > 0 ? (extra * REFERENCE_MBPS) / mbps : 0,
    '% of a core',
    {
      noiseFloor: 0.3,
    },
  );
  bench.report(`uploads: the upload path alone, per ${REFERENCE_MBPS} Mb/s stream`, await uploadPath(), '% of a core', {
    max: 1,
  });
  bench.report('uploads: gateway memory uploading (main process)', uploaded.rssMb, 'MB');
  bench.report('uploads: its growth over the window', uploaded.rssGrowthMb, 'MB', { max: 40 });
}
