import t from 'tap';
import { RtmpPushClient, type RtmpPublishOptions } from '../../src/rtmp/client.js';
import { RtmpError } from '../../src/rtmp/errors.js';
import type { Amf0Value } from '../../src/media/amf0.js';
import { RtmpReceiver, type RtmpMediaMessage, type RtmpPublish } from '../../kit/rtmp-receiver.js';
import { freePort } from '../../kit/rtmp-server.js';
import { startProcess, stopProcess, waitFor } from '../../kit/processes.js';

let receiver: RtmpReceiver;
t.before(async () => {
  receiver = await RtmpReceiver.start();
});
t.teardown(() => receiver.close());

const options = (overrides: Partial<RtmpPublishOptions> = {}): RtmpPublishOptions => ({
  protocol: 'rtmp',
  address: '127.0.0.1',
  port: receiver.port,
  host: 'localhost',
  app: 'live/instance',
  tcUrl: `rtmp://localhost:${receiver.port}/live/instance`,
  streamName: 'stream1',
  query: 'token=abc',
  flashVer: 'FMLE/3.0 (compatible; test)',
  timeoutMs: 2000,
  ...overrides,
});

t.test('publishes: connect carries app, tcUrl and flashVer; the server gets metadata and media in order', async (t) => {
  const publishes: RtmpPublish[] = [];
  const media: RtmpMediaMessage[] = [];
  const metadata: Record<string, Amf0Value>[] = [];
  receiver.on('publish', (p) => publishes.push(p));
  receiver.on('media', (m) => media.push(m));
  receiver.on('metadata', (_p, m) => metadata.push(m));
  const ended = new Promise<void>((resolve) => receiver.once('end', () => resolve()));

  const client = await RtmpPushClient.publish(options());
  t.match(publishes, [
    {
      app: 'live/instance',
      tcUrl: `rtmp://localhost:${receiver.port}/live/instance`,
      flashVer: 'FMLE/3.0 (compatible; test)',
      streamName: 'stream1?token=abc',
    },
  ]);
  client.writeMetadata({ width: 1280, height: 720 });
  client.writeVideo(0, Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0]), Buffer.alloc(9000, 3)]));
  client.writeAudio(21, Buffer.from([0xaf, 1, 5, 5]));
  await waitFor('the media to arrive', () => media.length >= 2);
  t.same(metadata, [{ width: 1280, height: 720 }]);
  t.same(
    media.map((m) => [m.kind, m.timestamp, m.key, m.data.length]),
    [
      ['video', 0, true, 9005],
      ['audio', 21, false, 4],
    ],
  );
  t.ok(client.bytesWritten > 9009);
  await client.close();
  await ended;
  t.ok(client.closed);
  receiver.removeAllListeners();
});

t.test('media written over several ticks goes out in one merged write; close sends what is held', async (t) => {
  const media: RtmpMediaMessage[] = [];
  receiver.on('media', (m) => media.push(m));
  t.teardown(() => receiver.removeAllListeners());
  const ended = new Promise<void>((resolve) => receiver.once('end', () => resolve()));
  const client = await RtmpPushClient.publish(options());
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const startedAt = performance.now();
  for (let i = 0; i < 5; i++) {
    client.writeAudio(21 * i, Buffer.from([0xaf, 1, i, i]));
    await tick();
  }
  // A thread held past a merged write's 40 ms (a busy machine) sends what it held by then: one read each.
  const elapsedMs = performance.now() - startedAt;
  const merges = 1 + Math.floor(elapsedMs / 40);
  if (merges === 1) {
    t.ok(client.bufferedBytes > 0, `held after five ticks (${client.bufferedBytes} bytes)`);
    t.equal(client.undeliveredBytes, client.bufferedBytes, 'and counted as not delivered');
  }
  await waitFor('the five to arrive', () => media.length >= 5);
  const reads = new Set(media.map((m) => m.arrivalMs)).size;
  t.ok(
    reads <= merges,
    `read by the server in ${reads} reads, ${merges} merged writes at most (${elapsedMs.toFixed(1)} ms)`,
  );
  t.equal(client.bufferedBytes, 0, 'nothing held once written');
  client.writeAudio(200, Buffer.from([0xaf, 1, 9, 9]));
  await client.close();
  await ended;
  t.same(
    media.map((m) => m.timestamp),
    [0, 21, 42, 63, 84, 200],
    'the message written just before close arrived, in order',
  );
});

t.test('a refused publish rejects with the server code and description', async (t) => {
  receiver.refuse = { code: 'NetStream.Publish.BadName', description: 'Stream already publishing' };
  t.teardown(() => (receiver.refuse = undefined));
  const error = await RtmpPushClient.publish(options()).catch((e: unknown) => e);
  t.type(error, RtmpError);
  t.equal((error as RtmpError).message, 'NetStream.Publish.BadName: Stream already publishing');
  t.equal((error as RtmpError).code, 'NetStream.Publish.BadName');
});

t.test('a closed port rejects with the connection error', async (t) => {
  const error = await RtmpPushClient.publish(options({ port: await freePort() })).catch((e: unknown) => e);
  t.match(String(error), /ECONNREFUSED/);
});

t.test('a server that never answers the handshake times out', async (t) => {
  const { createServer } = await import('node:net');
  const silent = createServer((socket) => socket.resume()); // reads, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        silent.close(() => r());
      }),
  );
  const started = Date.now();
  const error = await RtmpPushClient.publish(
    options({ port: (silent.address() as { port: number }).port, timeoutMs: 300 }),
  ).catch((e: unknown) => e);
  t.match(String(error), /did not accept the publish within 300 ms/);
  t.ok(Date.now() - started < 1500);
});

t.test("the query in connect alone (YouTube's backup form): the key is published bare", async (t) => {
  const publishes: RtmpPublish[] = [];
  const onPublish = (p: RtmpPublish): void => void publishes.push(p);
  receiver.on('publish', onPublish);
  t.teardown(() => receiver.off('publish', onPublish));
  const client = await RtmpPushClient.publish(options({ query: 'backup=1', queryInName: false }));
  await client.close();
  t.match(publishes, [{ app: 'live/instance?backup=1', tcUrl: /\/live\/instance\?backup=1$/, streamName: 'stream1' }]);
});

t.test('connect announces the Enhanced RTMP codecs it sends, and nothing of them for H.264 alone', async (t) => {
  const connects: Record<string, Amf0Value>[] = [];
  const onConnect = (c: Record<string, Amf0Value>): void => void connects.push(c);
  receiver.on('connect', onConnect);
  t.teardown(() => receiver.off('connect', onConnect));
  const enhanced = await RtmpPushClient.publish(options({ videoFourCcs: ['av01'] }));
  await enhanced.close();
  const plain = await RtmpPushClient.publish(options());
  await plain.close();
  t.equal(connects.length, 2);
  t.same(connects[0]?.fourCcList, ['av01'], 'a strict array of FourCCs');
  t.same(connects[0]?.videoFourCcInfoMap, { av01: 2 }, 'it can encode (send) them');
  t.equal(connects[0]?.capsEx, 0);
  t.equal(connects[0]?.flashVer, 'FMLE/3.0 (compatible; test)', 'beside the usual fields');
  t.notOk('fourCcList' in connects[1]!, 'H.264 alone: connect as before');
  t.notOk('capsEx' in connects[1]!);
});

t.test('RTMP authentication: Adobe and Limelight, as Wowza and Limelight ask for them', async (t) => {
  t.teardown(() => (receiver.auth = undefined));
  const connects: Record<string, Amf0Value>[] = [];
  const onConnect = (c: Record<string, Amf0Value>): void => void connects.push(c);
  receiver.on('connect', onConnect);
  t.teardown(() => receiver.off('connect', onConnect));
  const credentials = { user: 'pub lisher', password: 'p@ss:w/rd+' };

  for (const method of ['adobe', 'llnw'] as const) {
    receiver.auth = { method, ...credentials };
    connects.length = 0;
    const client = await RtmpPushClient.publish(options({ credentials }));
    t.equal(connects.length, 3, `${method}: three connects (need auth, challenge, response)`);
    t.equal(connects[0]?.app, 'live/instance?token=abc', `${method}: the first connect is plain`);
    t.match(connects[1]?.app, new RegExp(`^live/instance\\?token=abc&authmod=${method}&user=pub%20lisher$`));
    t.match(connects[2]?.app, new RegExp(`^live/instance\\?token=abc&authmod=${method}&user=pub%20lisher&.*response=`));
    t.match(
      connects[2]?.tcUrl,
      new RegExp(`^rtmp://localhost:\\d+/live/instance\\?token=abc&authmod=${method}&`),
      `${method}: tcUrl carries the same query`,
    );
    t.notMatch(JSON.stringify(connects), /p@ss|w\/rd/, `${method}: the password itself is never sent`);
    await client.close();
  }

  receiver.auth = { method: 'adobe', ...credentials };
  const wrong = await RtmpPushClient.publish(
    options({ credentials: { ...credentials, password: 'wrong-password' } }),
  ).catch((e: unknown) => e);
  t.type(wrong, RtmpError);
  t.equal((wrong as Error).message, 'the destination refused the user name or password');
  const unknown = await RtmpPushClient.publish(options({ credentials: { user: 'nobody', password: 'x' } })).catch(
    (e: unknown) => e,
  );
  t.equal((unknown as Error).message, 'the destination does not know the user name');
  const none = await RtmpPushClient.publish(options()).catch((e: unknown) => e);
  t.match(
    (none as Error).message,
    /requires a user name and password \(adobe authentication\): give them in the URL, rtmp:\/\/user:password@host\/app/,
  );
});

t.test(
  "the test server authenticates as real servers do: ffmpeg's own RTMP client gets in with the password and not without it",
  async (t) => {
    t.teardown(() => (receiver.auth = undefined));
    for (const method of ['adobe', 'llnw'] as const) {
      receiver.auth = { method, user: 'ffuser', password: 'ffpass' };
      for (const [password, accepted] of [
        ['ffpass', true],
        ['nope', false],
      ] as const) {
        let published = false;
        const onPublish = (): void => void (published = true);
        receiver.on('publish', onPublish);
        const ffmpeg = startProcess('ffmpeg', [
          '-hide_banner',
          '-nostdin',
          '-loglevel',
          'error',
          '-f',
          'lavfi',
          '-i',
          'color=size=64x64:rate=5',
          '-frames:v',
          '5',
          '-c:v',
          'flv',
          '-f',
          'flv',
          `rtmp://ffuser:${password}@127.0.0.1:${receiver.port}/live/ff`,
        ]);
        t.teardown(() => stopProcess(ffmpeg));
        const code = await new Promise<number | null>((resolve) => ffmpeg.once('exit', (c) => resolve(c)));
        receiver.off('publish', onPublish);
        const outcome = accepted ? 'published' : 'was refused';
        t.equal(published, accepted, `${method}, ${accepted ? 'right' : 'wrong'} password: ffmpeg ${outcome}`);
        t.equal(code === 0, accepted, `${method}: ffmpeg's exit status agrees`);
      }
    }
  },
);
