import { readdir, readFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { testFixture } from '../helpers/synthetic.js';
import { spellings } from '../helpers/spellings.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// A canary stream key, RTMP password and query token go through everything the gateway does with a
// destination: startup, a refusal that echoes them back, find, a reconnect, debug logs with ffmpeg's
// output, metrics, webhooks, the console's events, every process's command line, the files it
// writes. So does a key pasted into the path of a prefix-mode URL (`rtmp://host/app/KEY`). They
// must show up nowhere, in no spelling: raw, percent-encoded, with + for space, base64 or hex.

const KEY = 'SKEYcanary7731';
const PASSWORD = 'PWcanary4419';
const TOKEN_URL = 'QTcanary+5512%2F9'; // the query value as written in the URL: "QTcanary 5512/9"
const BARE = 'BAREcanary2207';
const PATH_KEY = 'PKEYcanary6068';
const CANARIES = [KEY, PASSWORD, 'QTcanary 5512/9', BARE, PATH_KEY];

const runDir = await mkdtemp(join(tmpdir(), 'gateway-canary-'));
const logFile = join(runDir, 'gateway.log');
const receiver = await RtmpReceiver.start();
receiver.auth = { method: 'adobe', user: 'streamer', password: PASSWORD };
const hooks = await WebhookReceiver.start('webhook-secret-0123456789');
t.teardown(async () => {
  await stopAllProcesses();
  await receiver.close();
  await hooks.stop();
  await rm(runDir, { recursive: true, force: true });
});

t.test('the canaries appear in no response, log line, metric, command line, ffmpeg output or file', async (t) => {
  const gateway = await GatewayProcess.start(
    logFile,
    {
      GATEWAY_LOG_LEVEL: 'debug',
      GATEWAY_RUN_DIR: runDir,
      GATEWAY_RTMP_PUSH_RESTORE_INTERVAL_MS: '200',
      GATEWAY_WEBHOOKS: JSON.stringify([{ id: 'hooks', url: hooks.url, secret: 'webhook-secret-0123456789' }]),
    },
    ['--import', 'tsx'],
    'kit/server-from-source.ts',
  );
  // The operator console's event stream, read from the start to the end of the test.
  const consoleEvents = new AbortController();
  let consoleText = '';
  const following = fetch(gateway.baseUrl + '/rest-api/console/events', { signal: consoleEvents.signal })
    .then(async (response) => {
      const reader = response.body!.getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read())
        consoleText += Buffer.from(read.value).toString();
    })
    .catch(() => {});
  const published: string[] = [];
  receiver.on('publish', (p) => published.push(p.app));
  const publisher = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'cam');
  t.teardown(() => publisher.stop());
  await waitFor(
    'a keyframe of the stream',
    async () => (await gateway.request('POST', '/rest-api/stream/find', { name: 'cam' })).body?.[0]?.keyframes >= 1,
    15_000,
  );
  const rtmpUrl = `rtmp://streamer:${PASSWORD}@127.0.0.1:${receiver.port}/live/${KEY}?token=${TOKEN_URL}&${BARE}`;
  const seen: string[] = [];
  const keep = (what: string, value: unknown): void =>
    void seen.push(`${what}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);

  // A destination that refuses, echoing back its tcUrl, app and stream name, encoded as sent.
  receiver.refusals.push({
    code: 'NetStream.Publish.BadName',
    description: 'refused {tcUrl} app={app} stream={stream}',
  });
  const refused = await gateway.request('POST', '/rest-api/push/startup', {
    streamName: 'cam',
    rtmpUrl,
    rtmpTransponderFullUrl: true,
  });
  t.equal(refused.status, 500, 'the refusal is reported');
  t.match(refused.body.message, /refused/, `with the server's words: ${refused.body.message}`);
  keep('refusal', refused.body);

  const started = await gateway.request('POST', '/rest-api/push/startup', {
    streamName: 'cam',
    rtmpUrl,
    rtmpTransponderFullUrl: true,
  });
  t.equal(started.status, 200, 'startup after authenticating with the password');
  keep('startup', started.body);
  const id = started.body.mediaSessionId;
  keep('find', (await gateway.request('POST', '/rest-api/push/find', { rtmpUrl })).body);
  keep('find_all', (await gateway.request('POST', '/rest-api/push/find_all')).body);
  keep(
    'conflict',
    (
      await gateway.request('POST', '/rest-api/push/startup', {
        streamName: 'cam',
        rtmpUrl,
        rtmpTransponderFullUrl: true,
      })
    ).body,
  );

  // Prefix mode with the key pasted in the path: it goes to the server as the application instance.
  const pathUrl = `rtmp://streamer:${PASSWORD}@127.0.0.1:${receiver.port}/live/${PATH_KEY}`;
  const inPath = await gateway.request('POST', '/rest-api/push/startup', {
    streamName: 'cam',
    rtmpUrl: pathUrl,
    rtmpTransponderFullUrl: false,
  });
  t.equal(inPath.status, 200, 'startup in prefix mode with a key in the path');
  t.match(
    inPath.body.rtmpUrl,
    /\/live\/\*\*\*$/,
    `listed with the path after the application hidden: ${inPath.body.rtmpUrl}`,
  );
  t.ok(
    published.some((app) => app.startsWith(`live/${PATH_KEY}`)),
    'the key in the path reached the server as the application instance',
  );
  keep('startup, key in the path', inPath.body);
  keep('find, key in the path', (await gateway.request('POST', '/rest-api/push/find', { rtmpUrl: pathUrl })).body);
  keep('stream/find', (await gateway.request('POST', '/rest-api/stream/find', { name: 'cam' })).body);

  for (const pid of [gateway.pid, ...(await gateway.ffmpegPids())])
    keep(`cmdline ${pid}`, (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' '));
  // The two pushes of the stream hear the same audio: they share one AAC encoder, whose command line was read above.
  t.equal((await gateway.ffmpegPids()).length, 1, 'one ffmpeg runs for the two pushes');

  // A reconnect: the destination drops the connection; the password is answered again.
  receiver.dropAll();
  await waitFor(
    'the push to reconnect',
    async () => {
      const [push] = (await gateway.request('POST', '/rest-api/push/find', { rtmpUrl })).body;
      keep('find while reconnecting', push);
      return push?.counters.reconnects >= 1 && push.state === 'running';
    },
    15_000,
  );
  keep('metrics', await (await fetch(gateway.baseUrl + '/metrics')).text());
  t.equal((await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
  t.equal(
    (await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: inPath.body.mediaSessionId })).status,
    200,
  );
  await waitFor(
    "the webhooks of both pushes' ends",
    () => hooks.delivered.filter((h) => h.type === 'transponder.stopped').length >= 2,
    15_000,
  );
  await waitFor(
    'the console to hear of both ends',
    () => (consoleText.match(/transponder\.stopped/g) ?? []).length >= 2,
    15_000,
  );
  consoleEvents.abort();
  await following;
  await gateway.stop();
  keep(
    'webhooks',
    hooks.received.map((h) => h.body),
  );
  keep('console events', consoleText);

  keep('log', await readFile(logFile, 'utf8'));
  for (const file of await readdir(runDir))
    if (file !== 'gateway.log') keep(`file ${file}`, await readFile(join(runDir, file), 'utf8'));
  const text = seen.join('\n');
  t.match(text, /ffmpeg/i, "the debug log holds ffmpeg's own output");
  t.match(text, /\*\*\*/, 'the secrets were there, redacted');
  for (const canary of CANARIES) {
    for (const spelling of spellings(canary)) t.notOk(text.includes(spelling), `${canary} nowhere as ${spelling}`);
  }
  t.notMatch(text, /canary/i, 'no trace of any canary');
});
