import t from 'tap';
import { buildGateway } from '../../src/gateway/gateway.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/log.js';
import { WorkerPlane } from '../../src/plane/workers.js';
import { childPids, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { THIS_MACHINE } from '../../kit/this-machine.js';
import { testFixture } from '../helpers/synthetic.js';
import { sourceWorkers } from '../../kit/source-workers.js';

// A worker thread that dies (here: ended from outside, as a crash would end it): its publishers are
// told lost, the SDK publishes again and its push comes back on a worker, nothing of the dead one is
// left running or counted, and the other worker's stream loses no frame.

/**
 * Running descendants of this process, by command name (15 characters at most, as /proc shows it):
 * its ffmpeg are children of a worker's spawner. A process that ended but was not reaped (a zombie:
 * Node reaps a child only in the thread that started it, and that thread is gone) is not running.
 */
function children(name: string): Promise<number[]> {
  return childPids(process.pid, name.slice(0, 15));
}

t.test('a worker thread that dies: its stream comes back, the other loses nothing', async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const config = parseConfig({
    http_port: 0,
    log_level: process.env.TEST_LOG_LEVEL ?? 'silent',
    workers: 2,
    webrtc_ice_addresses: ['127.0.0.1'],
    webrtc_ice_remote_networks: THIS_MACHINE,
    destination_allow_loopback: true,
    overload_event_loop_delay_ms: 0,
    overload_event_loop_utilization: 0,
    overload_machine_cpu_percent: 0,
    // Two publishers in all: the dead worker's must be given back for the SDK's new publish to be taken.
    limit_publishers: 2,
    ...(process.env.GATEWAY_WEBRTC_ENGINE ? { webrtc_engine: process.env.GATEWAY_WEBRTC_ENGINE as 'werift' } : {}),
  });
  // Destinations are addresses (no host lookup): the workers resolve nothing.
  const gateway = buildGateway(config, createLogger(config.log_level), { startWorker: sourceWorkers });
  t.teardown(() => gateway.close());
  const baseUrl = await gateway.app.listen({ host: '127.0.0.1', port: 0 });
  const plane = gateway.plane as WorkerPlane;
  const request = async (path: string, body: unknown): Promise<any> =>
    (
      await fetch(baseUrl + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    ).json();
  const publishers: SyntheticPublisher[] = [];
  t.teardown(async () => {
    for (const p of publishers) await p.stop();
  });

  const sdk = (name: string) => ({ rtmpUrl: `${nginx.url()}/${name}`, rtmpTransponderFullUrl: true });
  const publish = async (name: string) => {
    const publisher = await SyntheticPublisher.publish(testFixture(), baseUrl, name, { sdk: sdk(name) });
    publishers.push(publisher);
    await waitFor(
      `${name} live`,
      () => publisher.messages.find((m) => m.type === 'destination' && m.state === 'live'),
      15_000,
    );
    return publisher;
  };
  const doomed = await publish('doomed');
  const survivor = await publish('survivor');
  const doomedThread = plane.threadOf('doomed');
  t.ok(doomedThread, 'doomed is held by a worker');
  t.not(doomedThread, plane.threadOf('survivor'), 'the two streams are in different workers');
  const [survivorPush] = await request('/rest-api/push/find', { streamName: 'survivor' });
  const [doomedPush] = await request('/rest-api/push/find', { streamName: 'doomed' });
  t.equal(survivorPush.state, 'running');

  const ffmpegBefore = await children('ffmpeg');
  const mediasoupBefore = await children('mediasoup-worker');
  t.equal(ffmpegBefore.length, 2, 'one ffmpeg per push');
  await doomedThread!.terminate();

  // Told lost, as a publisher whose connection failed: the SDK publishes again.
  await waitFor(
    'doomed told lost',
    () => doomed.messages.find((m) => m.type === 'status' && m.status === 'UNPUBLISHED' && m.lost),
    10_000,
  );
  t.pass('the SDK was told its stream was lost');
  await waitFor("the dead worker's ffmpeg to end", async () => (await children('ffmpeg')).length === 1, 10_000);
  t.same(
    (await children('ffmpeg')).filter((pid) => ffmpegBefore.includes(pid)).length,
    1,
    'its ffmpeg was killed, the other one runs',
  );
  if (config.webrtc_engine === 'mediasoup') {
    t.equal(mediasoupBefore.length, 2, 'a mediasoup process per worker');
    await waitFor(
      'its mediasoup process to end',
      async () => (await children('mediasoup-worker')).length === 1,
      10_000,
    );
    t.pass("the dead worker's mediasoup process ended (its UDP ports with it)");
  }

  const health = await (await fetch(`${baseUrl}/health`)).json();
  t.match(health, { publishers: 1, transponders: 1 }, 'the counts no longer hold what the dead worker ran');

  // The worker is started again; what the SDK does on a lost stream: publish it again, with its destination.
  const survivorThread = plane.threadOf('survivor');
  await waitFor(
    'the worker to be started again',
    () => plane.threads().length === 2 && !plane.threads().includes(doomedThread!),
    10_000,
  );
  await doomed.stop();
  const back = await publish('doomed');
  const newThread = plane.threadOf('doomed');
  t.ok(
    newThread && newThread !== survivorThread && newThread !== doomedThread,
    'placed on the restarted worker (the one with fewer streams)',
  );
  const [pushAgain] = await request('/rest-api/push/find', { streamName: 'doomed' });
  t.equal(pushAgain.state, 'running');
  t.not(pushAgain.mediaSessionId, doomedPush.mediaSessionId, 'a new push (the old one died with its worker)');
  await waitFor(
    'doomed at the RTMP server again',
    async () => (await nginx.streams()).some((s) => s.name === 'doomed' && s.width > 0),
    10_000,
  );
  t.ok(back.messages.some((m) => m.type === 'destination' && m.state === 'live'));

  // The other worker's stream went on untouched.
  const [survivorAfter] = await request('/rest-api/push/find', { streamName: 'survivor' });
  t.equal(survivorAfter.mediaSessionId, survivorPush.mediaSessionId);
  t.equal(survivorAfter.state, 'running');
  t.ok(
    survivorAfter.counters.frames > survivorPush.counters.frames,
    `it kept sending (${survivorPush.counters.frames} -> ${survivorAfter.counters.frames} frames)`,
  );
  t.match(
    survivorAfter.counters,
    { framesLost: 0, framesDropped: 0, framesDiscarded: 0, drops: 0 },
    'and lost no frame',
  );
  t.notOk(
    survivor.messages.some((m) => m.type === 'status' && m.status === 'UNPUBLISHED'),
    'its SDK heard nothing of it',
  );
  if (config.webrtc_engine === 'mediasoup')
    t.equal((await children('mediasoup-worker')).length, 2, 'the restarted worker has a mediasoup process of its own');
  t.match(
    await (await fetch(`${baseUrl}/health`)).json(),
    { publishers: 2, transponders: 2, workers: 2 },
    'the counts hold what runs',
  );
});
