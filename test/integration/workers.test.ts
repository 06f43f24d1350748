import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { stopAllProcesses, waitFor, isAlive } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { testFixture } from '../helpers/synthetic.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { WhepViewer } from '../../kit/whep-viewer.js';

// Streams spread over worker threads (workers: 2), as an operator runs the gateway: every request
// reaches the worker that holds its stream or push, and the limits hold for the whole gateway.

const runDir = await mkdtemp(join(tmpdir(), 'gateway-workers-'));
const nginx = await NginxRtmp.start();
const HOOK_SECRET = 'workers-webhook-secret';
const hooks = await WebhookReceiver.start(HOOK_SECRET);
const gateway = await GatewayProcess.start(
  join(runDir, 'gateway.log'),
  {
    GATEWAY_LOG_LEVEL: 'info',
    GATEWAY_WORKERS: '2',
    GATEWAY_LIMIT_PUBLISHERS: '4',
    GATEWAY_RUN_DIR: runDir,
    GATEWAY_RECORD_DIR: join(runDir, 'recordings'),
    GATEWAY_WEBHOOKS: JSON.stringify([{ id: 'app', url: hooks.url, secret: HOOK_SECRET }]),
  },
  ['--import', 'tsx'],
  'kit/server-from-source.ts',
);
const publishers: SyntheticPublisher[] = [];
t.teardown(async () => {
  for (const publisher of publishers) await publisher.stop();
  await gateway.stop();
  await stopAllProcesses();
  await nginx.stop();
  await hooks.stop();
  if (process.env.KEEP_LOG)
    await import('node:fs/promises').then((fs) => fs.copyFile(join(runDir, 'gateway.log'), process.env.KEEP_LOG!));
  await rm(runDir, { recursive: true, force: true });
});

/** Each worker's publishers, from /metrics. */
async function publishersByWorker(): Promise<Record<string, number>> {
  const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text();
  return Object.fromEntries(
    [...text.matchAll(/^gateway_load\{worker="(\d+)",measure="publishers"\} (\d+)$/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]),
  );
}

t.test('streams are spread over the workers and every request reaches the one that holds it', async (t) => {
  t.match(await gateway.request('GET', '/health'), { status: 200, body: { workers: 2 } });
  const names = ['w0', 'w1', 'w2', 'w3'];
  for (const name of names) publishers.push(await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, name));
  await waitFor(
    'both workers to tell their publishers',
    async () => Object.values(await publishersByWorker()).join() === '2,2',
    5000,
  );
  t.pass('two publishers in each worker');

  // limit_publishers counts across workers: each holds 2, the gateway 4.
  const fifth = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'w4').then(
    (p) => (publishers.push(p), 'taken'),
    (error: Error) => error.message,
  );
  t.match(fifth, /answered 503: .*limit of 4 publishers \(limit_publishers\)/);

  const ids: Record<string, string> = {};
  for (const name of names) {
    const res = await gateway.request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
    t.equal(res.status, 200, `${name}: ${JSON.stringify(res.body)}`);
    ids[name] = res.body.mediaSessionId;
  }
  const all = await gateway.request('POST', '/rest-api/push/find_all');
  t.same(all.body.map((x: any) => x.sourceStreamName).sort(), names, 'find_all gathers every worker');
  t.match(await gateway.request('POST', '/rest-api/push/find', { streamName: 'w3' }), {
    status: 200,
    body: [{ mediaSessionId: ids.w3, state: 'running' }],
  });
  t.equal((await gateway.request('POST', '/rest-api/push/find', { streamName: 'nobody' })).status, 404);
  await waitFor(
    'four streams at the RTMP server',
    async () => (await nginx.streams()).filter((s) => s.width > 0).length === 4,
    10_000,
  );
  // Webhooks hear of what happens in every worker.
  await waitFor(
    'the webhooks of both workers',
    () => hooks.delivered.filter((h) => h.type === 'transponder.started').length === 4,
    5000,
  );
  t.same(
    hooks.delivered
      .filter((h) => h.type === 'publisher.published')
      .map((h) => h.body.data.stream)
      .sort(),
    names,
    'published, from both workers',
  );
  t.same(
    hooks.delivered
      .filter((h) => h.type === 'transponder.started')
      .map((h) => h.body.data.mediaSessionId)
      .sort(),
    Object.values(ids).sort(),
    'started, from both workers',
  );
  // Per-push metrics are read from every worker.
  const metrics = await (await fetch(`${gateway.baseUrl}/metrics`)).text();
  t.equal(
    [...metrics.matchAll(/^gateway_push_state\{[^}]*state="running"\} 1$/gm)].length,
    4,
    'four running pushes in /metrics',
    {
      found: metrics
        .split('\n')
        .filter((l) => l.startsWith('gateway_push_state'))
        .slice(0, 10),
    },
  );
  // The stream API gathers every worker, and a snapshot comes from the worker that holds the stream.
  const streams = await gateway.request('POST', '/rest-api/stream/find_all', {});
  t.same(
    streams.body.map((x: any) => `${x.name}:${x.transponders.join()}`).sort(),
    names.map((n) => `${n}:${ids[n]}`),
    'stream/find_all gathers every worker',
  );
  const snapshot = await fetch(`${gateway.baseUrl}/rest-api/stream/snapshot`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'w1' }),
  });
  t.equal(snapshot.headers.get('content-type'), 'image/jpeg');
  t.same([...Buffer.from(await snapshot.arrayBuffer()).subarray(0, 2)], [0xff, 0xd8], 'a JPEG from a worker');

  for (const command of ['mute', 'unmute', 'sound_off']) {
    for (const name of ['w0', 'w1'])
      t.equal(
        (await gateway.request('POST', `/rest-api/push/${command}`, { mediaSessionId: ids[name] })).status,
        200,
        `${command} ${name}`,
      );
  }
  t.match(await gateway.request('POST', '/rest-api/push/mute', { mediaSessionId: 'nope' }), {
    status: 404,
    body: { error: 'not_found' },
  });
  t.equal(
    (await gateway.request('POST', '/rest-api/push/startup', { streamName: 'w2', rtmpUrl: nginx.url() })).status,
    409,
    'a second push to the same destination conflicts in its worker',
  );
  t.equal(
    (await gateway.request('POST', '/rest-api/push/startup', { streamName: 'absent', rtmpUrl: nginx.url() })).status,
    404,
    'a stream no worker holds is not publishing',
  );

  t.equal((await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: ids.w1 })).status, 200);
  await waitFor(
    'w1 to leave the RTMP server',
    async () => !(await nginx.streams()).some((s) => s.name === 'rtmp_w1'),
    5000,
  );
  t.equal((await gateway.request('POST', '/rest-api/push/find_all')).body.length, 3);

  // WHIP DELETE reaches the worker of its stream; the push of that stream ends with it.
  await publishers.find((p) => p.name === 'w2')!.stop();
  await waitFor(
    'w2 to end',
    async () => (await gateway.request('POST', '/rest-api/push/find', { streamName: 'w2' })).status === 404,
    5000,
  );
  // Its place is free again: a new publish is taken, by the worker with fewer streams.
  publishers.push(await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'w5'));
  await waitFor(
    'the publishers to be even again',
    async () => Object.values(await publishersByWorker()).join() === '2,2',
    5000,
  );
  t.pass('the new publish went to the worker with fewer');
  t.equal((await gateway.ffmpegPids()).length, 2, 'one ffmpeg per push still running (w0, w3)');
});

t.test(
  'the SDK through a worker: rtmpUrl starts the push, its states come back, a lost page is waited for in the same worker',
  async (t) => {
    // Two places of limit_publishers freed: w1's push was terminated, w5 has none.
    for (const publisher of publishers.filter((p) => p.name === 'w1' || p.name === 'w5')) await publisher.stop();
    await waitFor(
      'two publishers to end',
      async () => (await gateway.request('GET', '/health')).body.publishers === 2,
      5000,
    );
    const sdk = { rtmpUrl: nginx.url() };
    const first = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'sdk1', { sdk });
    publishers.push(first);
    const running = await waitFor(
      'the SDK to be told the push runs',
      async () => first.messages.find((m) => m.type === 'destination' && m.state === 'live'),
      10_000,
    );
    t.match(
      first.messages.find((m) => m.type === 'status'),
      { status: 'PUBLISHING', name: 'sdk1' },
    );
    await waitFor(
      'sdk1 at the RTMP server',
      async () => (await nginx.streams()).some((s) => s.name === 'rtmp_sdk1' && s.width > 0),
      10_000,
    );

    await first.vanish(); // the page is gone: WebSocket and peer connection
    await waitFor(
      'standby',
      async () =>
        (await gateway.request('POST', '/rest-api/push/find', { streamName: 'sdk1' })).body?.[0]?.state === 'standby',
      10_000,
    );
    const again = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'sdk1', { sdk });
    publishers.push(again);
    const resumed = await waitFor(
      'the push to go on with the new publisher',
      async () => again.messages.find((m) => m.type === 'destination' && m.mediaSessionId),
      10_000,
    );
    t.equal(
      resumed.mediaSessionId,
      running.mediaSessionId,
      'the same push took the stream back: the publish went to the worker holding it',
    );
    await waitFor(
      'running again',
      async () =>
        (await gateway.request('POST', '/rest-api/push/find', { streamName: 'sdk1' })).body?.[0]?.state === 'running',
      10_000,
    );

    await again.stop(); // unpublished on purpose: its push ends
    await waitFor(
      'the push to end',
      async () => (await gateway.request('POST', '/rest-api/push/find', { streamName: 'sdk1' })).status === 404,
      10_000,
    );
    t.pass('unpublish ended it');
  },
);

t.test('a recording in a worker: its parts are told by webhooks and listed by the main thread', async (t) => {
  const res = await gateway.request('POST', '/rest-api/push/startup', { streamName: 'w0', rtmpUrl: 'record://' });
  t.equal(res.status, 200, JSON.stringify(res.body));
  const started = await waitFor(
    'recording.started',
    () => hooks.delivered.find((h) => h.type === 'recording.started'),
    10_000,
  );
  t.match(started.body.data, {
    stream: 'w0',
    mediaSessionId: res.body.mediaSessionId,
    file: /^w0-\d{8}T\d{6}Z-001\.mp4$/,
  });
  t.match(await gateway.request('POST', '/rest-api/recording/find_all', {}), {
    status: 200,
    body: [{ fileName: started.body.data.file, streamName: 'w0', state: 'recording' }],
  });
  t.equal(
    (await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId })).status,
    200,
  );
  await waitFor('recording.finished', () => hooks.delivered.some((h) => h.type === 'recording.finished'), 10_000);
  t.match(await gateway.request('POST', '/rest-api/recording/find_all', {}), {
    status: 200,
    body: [{ state: 'finished', durationMs: Number }],
  });
});

t.test(
  "a WHEP viewer of a stream in a worker gets its media from that worker's media engine",
  { skip: process.env.GATEWAY_WEBRTC_ENGINE === 'werift' ? 'WHEP needs webrtc_engine: mediasoup' : false },
  async (t) => {
    const viewer = await WhepViewer.watch(gateway.baseUrl, 'w3');
    t.teardown(() => viewer.close());
    await waitFor(
      'video and audio at the viewer',
      () => viewer.received.video > 100 && viewer.received.keyframes > 0 && viewer.received.audio > 20,
      15_000,
    );
    t.pass(`${viewer.received.video} video packets, ${viewer.received.audio} audio`);
    // Each worker's media engine has one UDP port of its own share: the viewer is served on the port
    // that publisher w3 sends to, and on none of the other worker's.
    const port = (sdp: string): string => /^a=candidate:\S+ 1 udp \d+ \S+ (\d+) typ host/m.exec(sdp)![1]!;
    const ports = new Map(publishers.map((p) => [p.name, port(p.answer)]));
    t.equal(port(viewer.answer), ports.get('w3'), `the viewer is served by w3's worker (port ${ports.get('w3')})`);
    t.ok(
      [...ports.values()].some((p) => p !== ports.get('w3')),
      `the other worker has another port (${[...new Set(ports.values())].join(', ')})`,
    );
  },
);

t.test("the main thread forgets what it routed: an ended push, a mixer's inputs once removed", async (t) => {
  const tracked = async (map: string): Promise<number> => {
    const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text();
    return Number(
      new RegExp(`^gateway_tracked_entries\\{worker="main",map="${map}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0,
    );
  };
  const before = { sessions: await tracked('plane_sessions'), inputs: await tracked('plane_mixer_inputs') };
  const streams = ((await gateway.request('POST', '/rest-api/stream/find_all')).body as { name: string }[]).map(
    (s) => s.name,
  );
  t.ok(streams.length >= 2, `streams publishing: ${streams.join(', ')}`);
  const [one, two] = streams as [string, string];
  for (let i = 0; i < 3; i++) {
    const res = await gateway.request('POST', '/rest-api/push/startup', {
      streamName: one,
      rtmpUrl: `${nginx.url()}/forgotten${i}`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(res.status, 200, JSON.stringify(res.body));
    t.equal(
      (await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId })).status,
      200,
    );
  }
  const mixer = await gateway.request('POST', '/rest-api/mixer/startup', {
    uri: 'mixer://forgetting',
    width: 320,
    height: 180,
  });
  t.equal(mixer.status, 200, JSON.stringify(mixer.body));
  for (const stream of [one, two])
    t.equal(
      (await gateway.request('POST', '/rest-api/mixer/add', { uri: 'mixer://forgetting', remoteStreamName: stream }))
        .status,
      200,
    );
  t.equal((await tracked('plane_mixer_inputs')) - before.inputs, 2, 'two inputs routed');
  for (const stream of [one, two])
    t.equal(
      (await gateway.request('POST', '/rest-api/mixer/remove', { uri: 'mixer://forgetting', remoteStreamName: stream }))
        .status,
      200,
    );
  t.equal((await gateway.request('POST', '/rest-api/mixer/terminate', { uri: 'mixer://forgetting' })).status, 200);
  await waitFor(
    'the ended pushes forgotten',
    async () => (await tracked('plane_sessions')) === before.sessions,
    10_000,
  );
  t.equal(await tracked('plane_sessions'), before.sessions, 'no session of an ended push is left routed');
  t.equal(await tracked('plane_mixer_inputs'), before.inputs, 'no input of a mixer is left once removed');
});

t.test('SIGTERM ends the pushes of every worker and leaves no ffmpeg', async (t) => {
  const pids = await gateway.ffmpegPids();
  t.ok(pids.length >= 2, `ffmpeg processes run (${pids.length})`);
  t.comment(pids.join(' '));
  t.equal(await gateway.signal('SIGTERM'), 0, 'the gateway ends cleanly');
  t.same(pids.filter(isAlive), [], 'no ffmpeg of any worker is left');
});
