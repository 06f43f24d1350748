import t from 'tap';
import { statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startProcess, stopAllProcesses, stopProcess, waitFor } from '../../kit/processes.js';
import { freePort, NginxRtmp } from '../../kit/rtmp-server.js';
import { FilePushStore } from '../../src/store/push-log.js';
import { testFixture } from '../helpers/synthetic.js';

// Pushes started over REST survive the gateway: stopped, or killed with SIGKILL, then started
// again on the same data folder, it starts each kept push again as soon as its stream publishes,
// with its id and its audio as last commanded, and no call from the backend.

const dataDir = await mkdtemp(join(tmpdir(), 'gateway-kept-'));
const KEY = 'SKEYkept5129';
const env = {
  GATEWAY_HTTP_PORT: String(await freePort()),
  GATEWAY_DATA_DIR: dataDir,
  GATEWAY_RUN_DIR: dataDir,
  GATEWAY_LOG_LEVEL: 'info',
};
const nginx = await NginxRtmp.start();
const publishers: SyntheticPublisher[] = [];
let gateway: GatewayProcess | undefined;
t.teardown(async () => {
  for (const publisher of publishers) await publisher.vanish().catch(() => {});
  await gateway?.stop();
  await stopAllProcesses();
  await nginx.stop();
  if (process.env.KEEP_LOG)
    await import('node:fs/promises').then((fs) => fs.copyFile(join(dataDir, 'gateway.log'), process.env.KEEP_LOG!));
  await rm(dataDir, { recursive: true, force: true });
});

const start = async (): Promise<GatewayProcess> =>
  (gateway = await GatewayProcess.start(
    join(dataDir, 'gateway.log'),
    env,
    ['--import', 'tsx'],
    'kit/server-from-source.ts',
  ));
const publish = async (name: string): Promise<SyntheticPublisher> => {
  const publisher = await SyntheticPublisher.publish(testFixture(), gateway!.baseUrl, name);
  publishers.push(publisher);
  return publisher;
};
/** The stream's pushes as `find` lists them, none when it answers 404. */
const pushesOf = async (streamName: string): Promise<any[]> => {
  const res = await gateway!.request('POST', '/rest-api/push/find', { streamName });
  return res.status === 200 ? res.body : [];
};
/** The push the first test keeps: it is kept through the next test's kill too. */
let firstId = '';
const atNginx = async (name: string): Promise<boolean> =>
  (await nginx.streams()).some((s) => s.name === name && s.width > 0);

t.test('a push started over REST comes back after a restart, as soon as its stream publishes again', async (t) => {
  await start();
  const first = await publish('kept');
  const started = await gateway!.request('POST', '/rest-api/push/startup', {
    streamName: 'kept',
    rtmpUrl: `${nginx.url()}/kept-${KEY}`,
    rtmpTransponderFullUrl: true,
  });
  t.equal(started.status, 200, JSON.stringify(started.body));
  const id: string = started.body.mediaSessionId;
  firstId = id;
  t.equal((await gateway!.request('POST', '/rest-api/push/mute', { mediaSessionId: id })).status, 200);
  const gone = await gateway!.request('POST', '/rest-api/push/startup', {
    streamName: 'kept',
    rtmpUrl: `${nginx.url()}/gone`,
    rtmpTransponderFullUrl: true,
  });
  t.equal(gone.status, 200);
  t.equal(
    (await gateway!.request('POST', '/rest-api/push/terminate', { mediaSessionId: gone.body.mediaSessionId })).status,
    200,
  );
  await waitFor('the push at nginx', () => atNginx(`kept-${KEY}`));

  // What is kept on disk holds no stream key, in any spelling.
  const files = await readdir(dataDir);
  const log = files.find((f) => /^pushes-\d+\.log$/.test(f));
  t.ok(log, `the push store is in the data folder (${files.join(', ')})`);
  const kept = await readFile(join(dataDir, log!), 'utf8');
  for (const spelling of [
    KEY,
    Buffer.from(KEY).toString('base64').slice(2, -2),
    Buffer.from(KEY).toString('hex'),
    encodeURIComponent(KEY),
  ]) {
    t.notOk(kept.includes(spelling), `no ${spelling} in the store`);
  }
  t.ok(kept.includes(id), 'the push is kept, by its id');

  t.equal(await gateway!.signal('SIGTERM'), 0, 'stopped (a deploy)');
  await first.vanish();
  await waitFor('nginx to see the push end', async () => !(await atNginx(`kept-${KEY}`)));

  await start();
  t.same(await pushesOf('kept'), [], 'nothing runs while the stream is away');
  await publish('kept');
  const back = await waitFor('the kept push to run again', async () =>
    (await pushesOf('kept')).find((p) => p.state === 'running'),
  );
  t.equal(back.mediaSessionId, id, 'with its id');
  t.equal(back.muted, true, 'and its audio as last commanded');
  t.equal((await pushesOf('kept')).length, 1, 'the terminated push does not come back');
  await waitFor('the push at nginx again', () => atNginx(`kept-${KEY}`));
  t.pass('media at the destination again, with no call from the backend');
});

t.test('killed with SIGKILL while pushes are being started: every push it acknowledged comes back', async (t) => {
  const names = ['k1', 'k2', 'k3', 'k4'];
  const answers = names.map((name) =>
    gateway!
      .request('POST', '/rest-api/push/startup', {
        streamName: 'kept',
        rtmpUrl: `${nginx.url()}/${name}`,
        rtmpTransponderFullUrl: true,
      })
      .then(
        (res) => (res.status === 200 ? (res.body.mediaSessionId as string) : undefined),
        () => undefined, // cut by the kill
      ),
  );
  // Killed as soon as the first is acknowledged, while the others are being started and written.
  await Promise.race(answers);
  const killed = gateway!.signal('SIGKILL');
  const acknowledged = (await Promise.all(answers)).filter((id): id is string => id !== undefined);
  await killed;
  t.ok(acknowledged.length >= 1, `${acknowledged.length} of 4 acknowledged before the kill`);
  for (const publisher of publishers.splice(0)) await publisher.vanish();

  await start();
  await publish('kept');
  // Every acknowledged push, and the first test's: each starts again in its own time.
  const ids = await waitFor(
    'every acknowledged push, and the first, to run again',
    async () => {
      const running = (await pushesOf('kept'))
        .filter((p) => p.state === 'running')
        .map((p) => p.mediaSessionId as string);
      return [firstId, ...acknowledged].every((id) => running.includes(id)) && running;
    },
    30_000,
  );
  t.pass(`the ${acknowledged.length} acknowledged and the first run again (${ids.length} running)`);

  // Terminated, a kept push stays ended across a restart: every one the stream has (one written
  // but not acknowledged before the kill may still be starting).
  for (const id of new Set([...ids, ...(await pushesOf('kept')).map((p) => p.mediaSessionId as string)]))
    t.equal((await gateway!.request('POST', '/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
  t.equal(await gateway!.signal('SIGTERM'), 0);
  for (const publisher of publishers.splice(0)) await publisher.vanish();
  await start();
  await publish('kept');
  const fresh = await gateway!.request('POST', '/rest-api/push/startup', {
    streamName: 'kept',
    rtmpUrl: `${nginx.url()}/fresh`,
    rtmpTransponderFullUrl: true,
  });
  t.equal(fresh.status, 200);
  await waitFor('the new push to run', async () => (await pushesOf('kept')).some((p) => p.state === 'running'));
  t.same(
    (await pushesOf('kept')).map((p) => p.mediaSessionId),
    [fresh.body.mediaSessionId],
    'none of the terminated pushes came back',
  );
});

t.test(
  'a mixer started over REST comes back after a restart with its layout and inputs, and the kept push of its stream with it',
  async (t) => {
    const mixer = async (path: string, body: unknown): Promise<{ status: number; body: any }> =>
      gateway!.request('POST', `/rest-api/mixer/${path}`, body);
    await publish('host');
    await waitFor(
      'the host publishing',
      async () => (await gateway!.request('POST', '/rest-api/stream/find', { name: 'host' })).status === 200,
    );
    t.equal(
      (await mixer('startup', { uri: 'mixer://kept-show', layout: 'grid', width: 640, height: 360 })).status,
      200,
    );
    t.equal((await mixer('add', { uri: 'mixer://kept-show', remoteStreamName: 'host', label: 'Host' })).status, 200);
    t.match(
      await mixer('add', { uri: 'mixer://kept-show', remoteStreamName: 'guest' }),
      { status: 404, body: { field: 'remoteStreamName' } },
      'a stream that does not publish is refused…',
    );
    t.match(
      await mixer('add', { uri: 'mixer://kept-show', remoteStreamName: 'guest', waitForStream: true }),
      {
        status: 200,
        body: {
          inputs: [
            { streamName: 'host', publishing: true },
            { streamName: 'guest', publishing: false },
          ],
        },
      },
      '…unless asked to wait for it',
    );
    t.equal(
      (await mixer('setAudioVideo', { uri: 'mixer://kept-show', remoteStreamName: 'host', volume: 0.5 })).status,
      200,
    );
    t.equal((await mixer('set_layout', { uri: 'mixer://kept-show', layout: 'side-by-side' })).status, 200);
    const push = await gateway!.request('POST', '/rest-api/push/startup', {
      streamName: 'kept-show',
      rtmpUrl: `${nginx.url()}/kept-show`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    await waitFor('the mixer at nginx', () => atNginx('kept-show'));
    t.ok(
      (await readdir(dataDir)).some((f) => /^mixers-\d+\.json$/.test(f)),
      'the mixer is kept in the data folder',
    );

    t.equal(await gateway!.signal('SIGTERM'), 0, 'stopped (a deploy)');
    for (const publisher of publishers.splice(0)) await publisher.vanish();
    await waitFor('nginx to see the push end', async () => !(await atNginx('kept-show')));

    await start();
    t.match(
      (await mixer('find_all', {})).body,
      [
        {
          uri: 'mixer://kept-show',
          layout: 'side-by-side',
          width: 640,
          inputs: [
            { streamName: 'host', label: 'Host', volume: 0.5, publishing: false },
            { streamName: 'guest', publishing: false },
          ],
        },
      ],
      'the mixer is back as it was, its inputs placeholders until they publish',
    );
    const back = await waitFor('the kept push of its stream running again', async () =>
      (await pushesOf('kept-show')).find((p) => p.state === 'running'),
    );
    t.equal(back.mediaSessionId, push.body.mediaSessionId, 'with its id');
    await waitFor('the mixer at nginx again, with no call from the backend', () => atNginx('kept-show'));
    await publish('host');
    await waitFor(
      'the host in the mixer again',
      async () => (await mixer('find_all', {})).body[0].inputs[0].publishing === true,
    );

    t.equal((await mixer('terminate', { uri: 'mixer://kept-show' })).status, 200);
    t.equal(await gateway!.signal('SIGTERM'), 0);
    for (const publisher of publishers.splice(0)) await publisher.vanish();
    await start();
    t.equal((await mixer('find_all', {})).status, 404, 'a terminated mixer does not come back');
    t.same(await pushesOf('kept-show'), [], 'nor the push of its stream');
  },
);

t.test('the store killed with SIGKILL in the middle of writes keeps every write it acknowledged', async (t) => {
  const path = join(dataDir, 'writer.log');
  const kept = new Set<string>();
  const removed = new Set<string>();
  // Rounds 5 on are killed inside one 64 MB write, until one kill has landed inside it (the kill
  // may come once the record is whole, which proves nothing of a cut).
  let cut = false;
  for (let round = 0; round < 10 && !cut; round++) {
    const huge = round >= 5;
    const hugeId = `huge-${round}`;
    const writer = startProcess(
      'node',
      ['--import', 'tsx', 'test/helpers/push-store-writer.ts', path, ...(huge ? ['--huge', hugeId] : [])],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let lines = 0;
    let buffered = '';
    /** The log's size when the 64 MB record began. */
    let before = 0;
    /** Kills the writer once its 64 MB record has begun to reach the file (Node writes it in chunks) past `size`. */
    const killInsideWrite = (size: number): void => {
      before = size;
      const poll = setInterval(() => {
        if (statSync(path).size === before) return;
        clearInterval(poll);
        writer.kill('SIGKILL');
      }, 1);
      writer.once('exit', () => clearInterval(poll));
    };
    writer.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const done = buffered.split('\n');
      buffered = done.pop()!;
      for (const line of done) {
        const [op, id] = line.split(' ');
        if (op === 'huge') killInsideWrite(Number(id));
        else if (op === 'put') kept.add(id!);
        else if (op === 'removing')
          kept.delete(id!); // may be written or not when the kill comes
        else removed.add(id!);
        lines++;
      }
    });
    let written = 0;
    if (huge) {
      await new Promise((resolve) => writer.once('exit', resolve));
      written = statSync(path).size - before;
    } else {
      const target = 20 + round * 37;
      await waitFor(`${target} writes`, () => lines >= target, 30_000, 5);
      writer.kill('SIGKILL');
    }
    await stopProcess(writer);
    const store = await FilePushStore.open(path);
    const ids = new Set((await store.all()).map((p) => p.id));
    const missing = [...kept].filter((id) => !ids.has(id));
    t.same(
      missing,
      [],
      `round ${round}: every acknowledged put is there (${kept.size} kept, ${store.recovered.droppedBytes} torn bytes cut)`,
    );
    if (huge && ids.has(hugeId)) t.pass('the kill came after the 64 MB record was whole: it is kept');
    else if (huge) {
      cut = true;
      t.equal(
        store.recovered.droppedBytes,
        written,
        `killed inside a write: its ${written} bytes written of 64 MB were cut, exactly`,
      );
    }
    t.same(
      [...removed].filter((id) => ids.has(id)),
      [],
      `round ${round}: no acknowledged removal is undone`,
    );
    // What was written but not yet acknowledged may be there or not; what was removed and acknowledged is not.
    for (const id of ids) kept.add(id);
    await store.close();
  }
  t.ok(cut, 'a kill landed inside the 64 MB write in one of five tries');
});
