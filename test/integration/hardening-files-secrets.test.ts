import t, { type Test } from 'tap';
import { request } from 'node:http';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { isAlive, pidsMatching, startProcess, stopAllProcesses, stopProcess, waitFor } from '../../kit/processes.js';
import { SrtListener, freeUdpPort } from '../../kit/srt-listener.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { RedisServer } from '../../kit/redis-server.js';
import { freePorts } from '../../kit/rtmp-server.js';
import { compactTime } from '../../src/links/record-names.js';
import { offer as fuzzedOffer } from '../helpers/fuzz.js';
import { ffmpegCount, startGateway, type TestGateway } from '../helpers/gateway.js';
import { keyframeCached, pushWhenTaken } from '../helpers/pushes.js';
import { chromiumOffer } from '../helpers/offers.js';
import { testFixture } from '../helpers/synthetic.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// The third hardening round's findings, each reproduced as an attacker would: links planted in
// record_dir, control characters hidden in a destination's secrets, empty offers across threads,
// destination checks in bulk, WHEP viewers that never connect, a node call replayed to another
// node, and the SRT secrets in ffmpeg's command line.

t.teardown(() => stopAllProcesses());

/** POSTs a body from a chosen loopback address (each one a client of its own). */
function postFrom(
  localAddress: string,
  url: string,
  body: string,
  type = 'application/json',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', localAddress, headers: { 'content-type': type } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
const postJsonFrom = (localAddress: string, url: string, body: unknown): Promise<{ status: number; body: string }> =>
  postFrom(localAddress, url, JSON.stringify(body));
const offerFrom = (localAddress: string, url: string, sdp: string): Promise<{ status: number; body: string }> =>
  postFrom(localAddress, url, sdp, 'application/sdp');

/** The names a recording of `stream` could take over the next 30 s, to the second, with their -2 to -9. */
function recordingNames(stream: string): string[] {
  const now = Date.now();
  const names: string[] = [];
  for (let s = -1; s < 30; s++) {
    const name = `${stream}-${compactTime(new Date(now + s * 1000))}`;
    // A recording tried again within the same second takes `-2`, `-3`…: as many as it could try in one.
    names.push(name, ...Array.from({ length: 8 }, (_, i) => `${name}-${i + 2}`));
  }
  return names;
}

/** A gateway recording `stream` (published) in `dir`: the gateway and the record push's startup answer. */
async function recording(
  t: Test,
  dir: string,
  stream: string,
): Promise<{ gw: TestGateway; started: { status: number; body: any } }> {
  const gw = await startGateway({ record_dir: dir, record_min_free_mb: 1, record_part_s: 10 });
  t.teardown(() => gw.close());
  const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, stream);
  t.teardown(() => publisher.stop());
  await keyframeCached(gw, stream);
  return { gw, started: await gw.post('/rest-api/push/startup', { streamName: stream, rtmpUrl: 'record://' }) };
}

t.test(
  'links planted at every name a recording could take are never written through, and a link in record_dir is never served',
  async (t) => {
    const base = await mkdtemp(join(tmpdir(), 'gateway-links-'));
    t.teardown(() => rm(base, { recursive: true, force: true }));
    const dir = join(base, 'recordings');
    const outside = join(base, 'outside');
    await mkdir(outside);
    const victim = join(outside, 'victim.txt');
    await writeFile(victim, 'precious');
    await mkdir(dir, { recursive: true });
    // The names of the next 30 s: each part, the list, the folder, the about file.
    let planted = 0;
    for (const candidate of recordingNames('linkcam')) {
      for (const file of [`${candidate}-001.mp4`, `${candidate}-002.mp4`, `.${candidate}.csv`]) {
        await symlink(victim, join(dir, file));
        planted++;
      }
      await symlink(outside, join(dir, `.${candidate}.writing`));
      planted++;
    }
    const { gw, started } = await recording(t, dir, 'linkcam');
    t.comment(`${planted} links planted; startup answered ${started.status}`);
    if (started.status === 200) {
      // Its first part went where nothing was planted, or the push failed saying a name was taken.
      await waitFor(
        'the recording settled',
        async () => {
          const push = (await gw.post('/rest-api/push/find', { streamName: 'linkcam' })).body?.[0];
          return push?.state === 'failed' || (push?.counters?.outputBytes ?? 0) > 200_000;
        },
        20_000,
      );
      await gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId });
    }
    t.equal(await readFile(victim, 'utf8'), 'precious', 'the file the links point to is untouched');
    t.same(
      (await readdir(outside)).sort(),
      ['victim.txt'],
      'nothing was written in the folder a planted link points to',
    );
    for (const file of await readdir(dir)) {
      const info = await lstat(join(dir, file)).catch(() => undefined); // the recording's folder goes as it ends
      if (!info || info.isSymbolicLink()) continue;
      if (file.endsWith('.mp4')) t.equal(info.mode & 0o777, 0o640, `${file} is 0640`);
    }

    // A link in record_dir with a recording's name and an about file of its own: neither listed nor served.
    await writeFile(
      join(dir, '.evil-20260101T000000Z.json'),
      JSON.stringify({ stream: 'linkcam', mediaSessionId: 'x', startedAt: new Date().toISOString() }),
    );
    await symlink('/etc/passwd', join(dir, 'evil-20260101T000000Z-001.mp4'));
    const served = await fetch(`${gw.baseUrl}/rest-api/recording/download/evil-20260101T000000Z-001.mp4`);
    t.equal(served.status, 404, 'a link is not served');
    t.notMatch(await served.text(), /root:/, 'nothing of its target');
    const listed = await gw.post('/rest-api/recording/find_all', {});
    t.notMatch(JSON.stringify(listed.body), /evil-/, 'a link is not listed');
    t.equal(
      (await gw.post('/rest-api/recording/delete', { fileName: 'evil-20260101T000000Z-001.mp4' })).status,
      404,
      'nor deleted through',
    );
  },
);

t.test("a recording refused for a part's name taken in record_dir leaves no folder of its own behind", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-taken-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Every name the first part could take over the next 30 s is held by a file the recording did not write.
  const names = recordingNames('takencam');
  for (const candidate of names) await writeFile(join(dir, `${candidate}-001.mp4`), 'not this recording');
  const { started } = await recording(t, dir, 'takencam');
  // A recording is open once its first part is in record_dir: refused there, the startup is refused, saying why.
  t.equal(started.status, 500, JSON.stringify(started.body));
  t.equal(started.body?.error, 'destination_refused');
  t.match(
    started.body?.message,
    /^push failed to start: could not publish to the destination: record_dir already holds takencam-\d{8}T\d{6}Z(-\d+)?-001\.mp4, which this recording did not write$/,
  );
  await waitFor('no ffmpeg of the recording left', async () => (await ffmpegCount()) === 0, 10_000);
  const writing = async (): Promise<string[]> => (await readdir(dir)).filter((file) => file.endsWith('.writing'));
  await waitFor('its folder removed', async () => (await writing()).length === 0, 10_000).catch(() => {});
  t.same(await writing(), [], 'no .<name>.writing folder is left');
  const contents = await Promise.all(names.map((candidate) => readFile(join(dir, `${candidate}-001.mp4`), 'utf8')));
  t.ok(
    contents.every((text) => text === 'not this recording'),
    'the files at those names are untouched',
  );
});

t.test(
  'a recording whose gateway was killed is put in order at the next start; a folder a process holds open is left',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'gateway-killed-'));
    const runDir = await mkdtemp(join(tmpdir(), 'gateway-killed-run-'));
    t.teardown(() =>
      Promise.all([rm(dir, { recursive: true, force: true }), rm(runDir, { recursive: true, force: true })]),
    );
    const env = { GATEWAY_RECORD_DIR: dir, GATEWAY_RECORD_MIN_FREE_MB: '1', GATEWAY_RUN_DIR: runDir };
    const killed = await GatewayProcess.start(
      join(runDir, 'killed.log'),
      env,
      ['--import', 'tsx'],
      'kit/server-from-source.ts',
    );
    t.teardown(() => killed.stop());
    const publisher = await SyntheticPublisher.publish(testFixture(), killed.baseUrl, 'killedcam');
    t.teardown(() => publisher.stop());
    await pushWhenTaken(killed, 'killedcam', 'record://', 250);
    const part = await waitFor(
      'a part in record_dir',
      async () => (await readdir(dir)).find((f) => f.endsWith('.mp4')),
      15_000,
    );
    const name = part.replace(/-\d{3,}\.mp4$/, '');
    const ffmpeg = await killed.ffmpegPids();
    t.teardown(() => ffmpeg.forEach((pid) => isAlive(pid) && process.kill(pid, 'SIGKILL')));
    await killed.signal('SIGKILL');
    // Its ffmpeg sees its input end, finishes the part and lists it, and ends: nothing holds the folder then.
    await waitFor("the killed gateway's ffmpeg ended", () => !ffmpeg.some(isAlive), 15_000);
    const folder = join(dir, `.${name}.writing`);
    t.ok((await readdir(folder)).includes(part), 'the killed gateway left its folder, with the part in it');
    // The part ffmpeg had opened as the gateway was killed, before the gateway linked it in.
    await writeFile(join(folder, `${name}-002.mp4`), 'the start of a part');
    // Another gateway's recording on the same record_dir: its folder is held open by a process.
    const busy = join(dir, '.othercam-20260101T000000Z.writing');
    await mkdir(busy, { mode: 0o700 });
    await writeFile(join(busy, 'othercam-20260101T000000Z-001.mp4'), 'being written');
    const holder = startProcess('bash', ['-c', `exec 3<"${busy}"; exec sleep 600`], { stdio: 'ignore' });
    t.teardown(() => stopProcess(holder));
    await waitFor(
      'the folder held open',
      async () => (await readlink(`/proc/${holder.pid}/fd/3`).catch(() => '')) === busy,
      5000,
    );

    const next = await startGateway({ record_dir: dir, record_min_free_mb: 1 });
    t.teardown(() => next.close());
    await next.open();
    const left = (await readdir(dir)).filter((f) => f.endsWith('.writing'));
    t.same(
      left,
      ['.othercam-20260101T000000Z.writing'],
      "the killed recording's folder is gone; the one held open stays",
    );
    t.same(await readdir(busy), ['othercam-20260101T000000Z-001.mp4'], 'and what it holds is untouched');
    t.equal((await stat(join(dir, part))).nlink, 1, 'the part has one name left, in record_dir');
    t.ok((await readdir(dir)).includes(`.${name}.csv`), "ffmpeg's list moved beside the parts");
    const listed = (
      (await next.post('/rest-api/recording/find_all', { streamName: 'killedcam' })).body as {
        fileName: string;
        state: string;
      }[]
    ).map((r) => `${r.fileName} ${r.state}`);
    t.same(
      listed,
      [`${part} finished`, `${name}-002.mp4 interrupted`],
      'both parts listed: the one ffmpeg finished, the one cut short',
    );
    t.equal((await stat(join(dir, `${name}-002.mp4`))).mode & 0o777, 0o640, 'with the mode of recordings');
  },
);

t.test(
  'recordings are 0640 in a 0750 folder the gateway makes, and a part is linked in as ffmpeg writes it',
  async (t) => {
    const base = await mkdtemp(join(tmpdir(), 'gateway-modes-'));
    t.teardown(() => rm(base, { recursive: true, force: true }));
    const dir = join(base, 'made-by-the-gateway');
    const gw = await startGateway({ record_dir: dir, record_min_free_mb: 1 });
    t.teardown(() => gw.close());
    const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'modecam');
    t.teardown(() => publisher.stop());
    await keyframeCached(gw, 'modecam');
    const started = await gw.post('/rest-api/push/startup', { streamName: 'modecam', rtmpUrl: 'record://' });
    t.equal(started.status, 200, JSON.stringify(started.body));
    const part = await waitFor(
      'a part in record_dir',
      async () => (await readdir(dir)).find((f) => f.endsWith('.mp4')),
      15_000,
    );
    t.equal((await stat(dir)).mode & 0o777, 0o750, 'record_dir 0750');
    t.equal((await stat(join(dir, part))).mode & 0o777, 0o640, 'the part 0640');
    t.equal(
      (await stat(join(dir, part))).nlink,
      2,
      'the part is the file ffmpeg writes in its own folder (a hard link)',
    );
    const writing = (await readdir(dir)).find((f) => f.endsWith('.writing'))!;
    t.equal((await stat(join(dir, writing))).mode & 0o777, 0o700, "ffmpeg's folder is the gateway's alone");
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId })).status, 200);
    await waitFor(
      'the recording finished and its folder removed',
      async () => !(await readdir(dir)).some((f) => f.endsWith('.writing')),
      10_000,
    );
    t.equal((await stat(join(dir, part))).nlink, 1, 'one name left: the one in record_dir');
    t.ok(
      (await readdir(dir)).some((f) => f.endsWith('.csv')),
      "ffmpeg's list of parts moved beside them",
    );
  },
);

t.test(
  'a control character hidden in any secret of a destination is a 400 naming rtmpUrl, and the secret shows nowhere',
  async (t) => {
    const CANARY = 'CANARYnul7731secret';
    const logLines: string[] = [];
    const hooks = await WebhookReceiver.start('hook-secret-0123456789');
    t.teardown(() => hooks.stop());
    const gw = await startGateway(
      {
        log_level: 'debug',
        webhooks: [
          {
            id: 'app',
            url: hooks.url,
            secret: 'hook-secret-0123456789',
            events: [],
            timeout_ms: 5000,
            max_attempts: 2,
            queue_limit: 100,
          },
        ],
      },
      logLines,
    );
    t.teardown(() => gw.close());
    const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'nulcam');
    t.teardown(() => publisher.stop());
    const srtPort = await freeUdpPort();
    const urls = [
      `srt://127.0.0.1:${srtPort}?passphrase=%00${CANARY}`,
      `srt://127.0.0.1:${srtPort}?streamid=%00${CANARY}`,
      `srt://127.0.0.1:${srtPort}?streamid=${CANARY}%0a&passphrase=${CANARY}xx`,
      `rtmp://127.0.0.1:1935/live/${CANARY}%00`,
      `rtmp://127.0.0.1:1935/live%0a${CANARY}/x`,
      `rtmp://127.0.0.1:1935/live/?token=%00${CANARY}`,
      `rtmp://u:${CANARY}%0d@127.0.0.1:1935/live`,
    ];
    const answers: string[] = [];
    for (const rtmpUrl of urls) {
      for (const route of ['/rest-api/push/check', '/rest-api/push/startup']) {
        const res = await gw.post(route, {
          streamName: 'nulcam',
          rtmpUrl,
          rtmpTransponderFullUrl: rtmpUrl.includes('/live/') && !rtmpUrl.includes('?'),
        });
        t.match(
          res,
          {
            status: 400,
            body: { error: 'invalid_request', field: 'rtmpUrl', message: /control characters|badly percent-encoded/ },
          },
          `${route} ${rtmpUrl.replace(CANARY, 'CANARY')}`,
        );
        answers.push(JSON.stringify(res.body));
      }
    }
    t.equal(gw.ffmpeg.count, 0, 'no ffmpeg started');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const spellings = [
      CANARY,
      encodeURIComponent(CANARY),
      Buffer.from(CANARY).toString('base64').slice(2, -2),
      Buffer.from(CANARY).toString('hex'),
      CANARY.slice(0, 12),
    ];
    const everywhere = [...answers, ...logLines, ...hooks.received.map((h) => JSON.stringify(h))].join('\n');
    for (const spelling of spellings)
      t.notOk(everywhere.includes(spelling), `no answer, log line or webhook holds ${spelling}`);
  },
);

t.test('an ffmpeg argument Node refuses is a GatewayError that quotes no argument', async (t) => {
  const { FfmpegProcess } = await import('../../src/ffmpeg/ffmpeg-process.js');
  const { ownSpawner } = await import('../../src/ffmpeg/spawner-client.js');
  const { GatewayError } = await import('../../src/core/errors.js');
  let thrown: unknown;
  try {
    new FfmpegProcess(ownSpawner(), 'ffmpeg', ['-passphrase', '\u0000SECRETspawn42']);
  } catch (error) {
    thrown = error;
  }
  t.ok(thrown instanceof GatewayError, 'a GatewayError');
  t.notMatch(
    (thrown as Error).message,
    /SECRETspawn42/,
    `its message quotes no argument: ${(thrown as Error).message}`,
  );
});

t.test(
  'through worker threads (workers: auto): an empty offer is a 400 naming the body, and fuzzed offers never a 500',
  async (t) => {
    const logDir = await mkdtemp(join(tmpdir(), 'gateway-offers-'));
    t.teardown(() => rm(logDir, { recursive: true, force: true }));
    const logFile = join(logDir, 'gateway.log');
    const gateway = await GatewayProcess.start(
      logFile,
      { GATEWAY_WORKERS: 'auto' },
      ['--import', 'tsx'],
      'kit/server-from-source.ts',
    );
    t.teardown(() => gateway.stop());
    const publisher = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'watched');
    t.teardown(() => publisher.stop());
    for (const path of ['/whip/empty', '/whep/watched', '/whep/nobody']) {
      for (const body of ['', ' \r\n']) {
        const res = await fetch(gateway.baseUrl + path, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp' },
          body,
        });
        t.match(
          { status: res.status, body: await res.json(), cors: res.headers.get('access-control-allow-origin') },
          { status: 400, body: { field: 'body', message: /empty/ }, cors: '*' },
          `${path} with ${JSON.stringify(body)}: refused with CORS headers, so a page can read why`,
        );
      }
    }
    const fiveHundreds: string[] = [];
    await fc.assert(
      fc.asyncProperty(fuzzedOffer, fc.boolean(), async (sdp, whep) => {
        const path = whep ? '/whep/watched' : '/whip/fuzzed';
        const res = await fetch(gateway.baseUrl + path, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp' },
          body: whep ? sdp.replaceAll('a=sendonly', 'a=recvonly') : sdp,
        });
        const text = await res.text();
        if (res.status >= 500) fiveHundreds.push(`${path} → ${res.status} ${text}`);
        if (res.status === 201) await fetch(gateway.baseUrl + res.headers.get('location')!, { method: 'DELETE' });
        return true;
      }),
      { numRuns: 300, seed: 20261125 },
    );
    t.same(fiveHundreds, [], 'no 5xx among 300 fuzzed offers crossing to a worker');
    t.notMatch(await readFile(logFile, 'utf8'), /ZodError/, 'no ZodError between threads');
  },
);

t.test(
  '40 destination checks at once: at most limit_checks run (one ffmpeg each), the rest refused at once, /health answers throughout',
  async (t) => {
    const gw = await startGateway({ limit_checks: 4, limit_checks_queue: 4, limit_checks_per_client: 2 });
    t.teardown(() => gw.close());
    const silent = await freeUdpPort(); // nobody answers: each SRT check waits for its timeout
    let peak = 0;
    let polling = true;
    const healthMs: number[] = [];
    const healthFailed: number[] = [];
    const watcher = (async () => {
      while (polling) {
        const at = performance.now();
        const res = await fetch(`${gw.baseUrl}/health`);
        healthMs.push(performance.now() - at);
        if (res.status !== 200) healthFailed.push(res.status);
        peak = Math.max(peak, (await pidsMatching('anullsrc=r=48000')).length);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    // 20 clients (127.0.0.2-21), two checks each.
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        postJsonFrom(`127.0.0.${2 + (i % 20)}`, `${gw.baseUrl}/rest-api/push/check`, {
          rtmpUrl: `srt://127.0.0.1:${silent}?streamid=s${i}`,
        }),
      ),
    );
    polling = false;
    await watcher;
    t.same(healthFailed, [], `/health answered 200 each of ${healthMs.length} times`);
    const statuses = results.map((r) => r.status);
    const count = (s: number): number => statuses.filter((x) => x === s).length;
    t.comment(
      `answers: ${count(200)} reports, ${count(503)} 503, ${count(429)} 429; /health max ${Math.max(...healthMs).toFixed(1)} ms over ${healthMs.length} probes`,
    );
    t.equal(count(200), 8, 'limit_checks + limit_checks_queue checks made');
    t.equal(count(503), 32, 'the others refused with 503');
    t.ok(peak <= 4, `at most limit_checks ffmpeg at once (${peak})`);
    const one = await Promise.all(
      [0, 1, 2].map(() =>
        postJsonFrom('127.0.0.30', `${gw.baseUrl}/rest-api/push/check`, { rtmpUrl: `srt://127.0.0.1:${silent}` }),
      ),
    );
    t.same(one.map((r) => r.status).sort(), [200, 200, 429], 'one client: limit_checks_per_client, then 429');
    t.match(JSON.parse(one.find((r) => r.status === 429)!.body), { message: /limit_checks_per_client/ });
  },
);

/** A WHEP viewer's offer, of a viewer that never connects. */
const viewerOffer = (): string =>
  chromiumOffer({ ufrag: Math.random().toString(36).slice(2, 10) }).replaceAll('a=sendonly', 'a=recvonly');

/** The statuses of `count` viewers' offers to `url`, one after another, from `address`. */
async function offersFrom(address: string, url: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push((await offerFrom(address, url, viewerOffer())).status);
  return statuses;
}

t.test(
  'one address cannot hold more WHEP viewer slots than limit_sessions_per_client; a viewer that never connects frees its slot',
  async (t) => {
    const gw = await startGateway({ limit_sessions_per_client: 3, webrtc_viewer_connect_timeout_ms: 1000 });
    t.teardown(() => gw.close());
    const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'seen');
    t.teardown(() => publisher.stop());
    await keyframeCached(gw, 'seen'); // publishing, as the gateway sees it: offers for it are answered
    const url = `${gw.baseUrl}/whep/seen`;
    // The publisher (127.0.0.1) holds one share: another address takes all three.
    const taken = await offersFrom('127.0.0.5', url, 3);
    t.same(taken, [201, 201, 201], 'three viewers that never connect');
    const refused = await offerFrom('127.0.0.5', url, viewerOffer());
    t.equal(refused.status, 429, `the fourth refused: ${refused.body}`);
    t.equal((await offerFrom('127.0.0.6', url, viewerOffer())).status, 201, 'another address is not held back');
    await waitFor(
      'the never-connected viewers closed and their slots freed',
      async () => (await offerFrom('127.0.0.5', url, viewerOffer())).status === 201,
      10_000,
      250,
    );
  },
);

t.test(
  "one address holds at most half of a stream's viewer slots; other addresses and other streams are not held back",
  async (t) => {
    const gw = await startGateway({
      limit_sessions_per_client: 20,
      limit_viewers_per_stream: 5,
      webrtc_viewer_connect_timeout_ms: 1000,
    });
    t.teardown(() => gw.close());
    for (const name of ['shared', 'other']) {
      const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, name);
      t.teardown(() => publisher.stop());
      await keyframeCached(gw, name);
    }
    const url = `${gw.baseUrl}/whep/shared`;
    // Half of 5, rounded up: 3.
    const taken = await offersFrom('127.0.0.7', url, 3);
    t.same(taken, [201, 201, 201], 'three viewers from one address');
    const refused = await offerFrom('127.0.0.7', url, viewerOffer());
    t.equal(refused.status, 429, 'the fourth refused');
    t.match(refused.body, /limit_viewers_per_client/, `it says why: ${refused.body}`);
    t.equal(
      (await offerFrom('127.0.0.8', url, viewerOffer())).status,
      201,
      'another address takes a slot of the stream',
    );
    t.equal(
      (await offerFrom('127.0.0.7', `${gw.baseUrl}/whep/other`, viewerOffer())).status,
      201,
      'and the same address one of another stream',
    );
    await waitFor(
      'the never-connected viewers closed and their places freed',
      async () => (await offerFrom('127.0.0.7', url, viewerOffer())).status === 201,
      10_000,
      250,
    );
  },
);

t.test(
  'a sealed node call is for one run of one node: replayed to another, a second time or after a restart it is refused; forged calls count as failed authentications',
  async (t) => {
    const redis = await RedisServer.start();
    t.teardown(() => redis.close());
    const runDir = await mkdtemp(join(tmpdir(), 'gateway-calls-'));
    t.teardown(() => rm(runDir, { recursive: true, force: true }));
    const [portA, portB] = await freePorts(2);
    const node = async (id: string, port: number): Promise<GatewayProcess> => {
      const cluster = {
        redis_url: redis.url,
        node_id: id,
        advertise_url: `http://127.0.0.1:${port}`,
        secret: 'cluster-secret-0123456789abcdef',
        heartbeat_ms: 200,
        node_timeout_ms: 1000,
        lease_ms: 1000,
      };
      const gateway = await GatewayProcess.start(
        join(runDir, `${id}.log`),
        {
          GATEWAY_HTTP_PORT: String(port),
          GATEWAY_CLUSTER: JSON.stringify(cluster),
          GATEWAY_RUN_DIR: runDir,
          GATEWAY_AUTH_FAILURES_PER_MINUTE: '5',
        },
        ['--import', 'tsx'],
        'kit/server-from-source.ts',
      );
      t.teardown(() => gateway.stop());
      return gateway;
    };
    let a = await node('a', portA!);
    const b = await node('b', portB!);
    // A call from b to a, captured on its way: a proxy in front of a keeps the body it passed.
    const { NodeCalls } = await import('../../src/cluster/node-calls.js');
    const calls = new NodeCalls('cluster-secret-0123456789abcdef', 'b');
    let captured = '';
    const { createServer } = await import('node:http');
    const proxy = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        captured = body;
        void fetch(`${a.baseUrl}/internal/plane`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        }).then(async (r) => {
          res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text());
        });
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const listed = (await (await fetch(`${a.baseUrl}/rest-api/cluster/nodes`)).json()) as {
      nodes: { id: string; boot?: string }[];
    };
    const boot = listed.nodes.find((n) => n.id === 'a')?.boot;
    t.ok(boot, "a lists its run's id");
    t.same(await calls.call({ id: 'a', url: proxyUrl, boot }, 'find', [{}]), [], 'the call went through to a');
    const replay = (url: string): Promise<Response> =>
      fetch(`${url}/internal/plane`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: captured,
      });
    t.equal((await replay(b.baseUrl)).status, 401, 'replayed to b: refused (meant for a)');
    t.equal((await replay(a.baseUrl)).status, 401, 'replayed to a: refused (made before)');
    // a restarts within the call's 30 s: it no longer remembers the nonce, but the call names its earlier run.
    await a.stop();
    a = await node('a', portA!);
    const afterRestart = await replay(a.baseUrl);
    t.equal(afterRestart.status, 503, 'replayed to a after its restart: refused');
    t.match(await afterRestart.text(), /an earlier run of this node/, 'as meant for its earlier run');
    const rebooted = (await (await fetch(`${a.baseUrl}/rest-api/cluster/nodes`)).json()) as {
      nodes: { id: string; boot?: string }[];
    };
    const newBoot = rebooted.nodes.find((n) => n.id === 'a')?.boot;
    t.not(newBoot, boot, 'a runs anew');
    t.same(
      await calls.call({ id: 'a', url: a.baseUrl, boot: newBoot }, 'find', [{}]),
      [],
      'a call naming its new run goes through',
    );
    const forged = [];
    for (let i = 0; i < 8; i++)
      forged.push((await postJsonFrom('127.0.0.9', `${b.baseUrl}/internal/plane`, { sealed: `forged-${i}` })).status);
    t.same(
      forged,
      [401, 401, 401, 401, 401, 429, 429, 429],
      'forged seals are failed authentications: 429 past auth_failures_per_minute',
    );
  },
);

t.test("an SRT push works with its stream id and passphrase out of ffmpeg's command line", async (t) => {
  const PASSPHRASE = 'srt-cmdline-pass-5512';
  const STREAM_ID = 'SIDcmdline9907';
  const listener = await SrtListener.start(PASSPHRASE);
  t.teardown(() => listener.close());
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'srtargs');
  t.teardown(() => publisher.stop());
  await keyframeCached(gw, 'srtargs');
  const started = await gw.post('/rest-api/push/startup', {
    streamName: 'srtargs',
    rtmpUrl: listener.url(`streamid=${STREAM_ID}&passphrase=${PASSPHRASE}`),
  });
  t.equal(started.status, 200, JSON.stringify(started.body));
  await waitFor('media at the listener', async () => (await listener.received()) > 100_000, 20_000);
  const pids = await pidsMatching('mode=caller');
  t.ok(pids.length >= 1, 'the SRT ffmpeg found');
  for (const pid of pids) {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
    t.notMatch(cmdline, new RegExp(`${PASSPHRASE}|${STREAM_ID}`), `/proc/${pid}/cmdline holds no SRT secret`);
  }
  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId })).status, 200);
});
