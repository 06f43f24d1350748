import t from 'tap';
import { startHog, stopHog } from '../../kit/cpu-hog.js';
import { childPids, waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { SHED_BEHIND_MS, SHED_SPACING_MS, UNSHED_AFTER_MS } from '../../src/plane/shedder.js';
import type { PushInfo } from '../../src/pushes/info.js';
import { IN_WORKERS, startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';
import { testFixture } from '../helpers/synthetic.js';

// The machine's shedder on real pushes: a program beside the gateway takes what CPU is left (busy
// loops at the lowest priority: the machine is saturated, yet no push but one is starved), one
// push's ffmpeg is stopped so that it falls behind, the newest push is in standby, two pushes share
// one encoder. The push shed is the one whose shedding frees the most; no other is shed after it
// (what it freed went to the busy loops, not to the pushes, and the push behind stays behind); it
// starts again once the load has passed. At an equal priority the busy loops would starve the
// shared encoder too, and whether a shed then let it catch up (shedding helped: the next is shed)
// would depend on the machine.

/** Lets a stopped process go on, if it is still there. */
function resume(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // ended meanwhile
  }
}

t.test(
  'a saturated machine sheds the push that frees the most, once, past a standby newest push and a shared encoder',
  async (t) => {
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    // Worker threads, as in production: the decision is the machine's, across them.
    const gw = await startGateway({
      ...IN_WORKERS,
      shed_min_pushes: 2,
      rtmp_push_publisher_grace_ms: 600_000,
      webrtc_media_timeout_ms: 2000,
    });
    t.teardown(() => gw.close());
    const hogs: number[] = [];
    const stopped: number[] = [];
    t.teardown(() => {
      for (const pid of hogs) stopHog(pid);
      for (const pid of stopped) resume(pid);
    });
    const cam = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam');
    t.teardown(() => cam.stop());
    await keyframeCached(gw, 'cam');
    const start = async (name: string, fields: Record<string, unknown> = {}): Promise<string> => {
      const reply = await gw.post('/rest-api/push/startup', {
        streamName: fields.streamName ?? 'cam',
        rtmpUrl: `${receiver.url()}/${name}`,
        rtmpTransponderFullUrl: true,
        ...fields,
      });
      t.equal(reply.status, 200, `${name}: ${JSON.stringify(reply.body)}`);
      const id = (reply.body as { mediaSessionId: string }).mediaSessionId;
      await waitFor(`${name} running`, async () => (await find(id))?.state === 'running', 30_000);
      return id;
    };
    const find = async (id: string): Promise<PushInfo | undefined> =>
      ((await gw.post('/rest-api/push/find_all', {})).body as PushInfo[]).find((p) => p.mediaSessionId === id);

    const before = new Set(await childPids(process.pid, 'ffmpeg'));
    const stalled = await start('stalled');
    const stalledFfmpeg = (await childPids(process.pid, 'ffmpeg')).filter((pid) => !before.has(pid));
    t.equal(stalledFfmpeg.length, 1, "the first push's own ffmpeg");
    const transcoding = await start('transcoding', { height: 360 });
    const sharedA = await start('shared-a', { height: 180 });
    const sharedB = await start('shared-b', { height: 180 });
    // The newest: a push of a stream whose publisher left, waiting in standby for it.
    const guest = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'guest');
    await keyframeCached(gw, 'guest');
    const standby = await start('standby', { streamName: 'guest' });
    await guest.vanish();
    await waitFor('the newest push in standby', async () => (await find(standby))?.state === 'standby', 20_000);

    // The machine taken by busy loops, one push's ffmpeg stopped: it falls behind.
    for (let i = 0; i < 3; i++) hogs.push(await startHog(19));
    process.kill(stalledFfmpeg[0]!, 'SIGSTOP');
    stopped.push(stalledFfmpeg[0]!);
    const shedAt = await waitFor(
      'a push shed',
      async () => ((await find(transcoding))?.counters.sheds ? Date.now() : undefined),
      SHED_BEHIND_MS + 40_000,
      500,
    );
    const shed = (await find(transcoding))!;
    t.match(
      shed,
      { state: 'reconnecting', lastError: /the machine is saturated/, counters: { sheds: 1 } },
      'the push with an encoder of its own that transcodes: shed, and find says why',
    );
    // Two more spacings with the busy loops on and the first push still behind: nothing more is shed.
    await waitFor('two shedding spacings', async () => Date.now() - shedAt >= 2 * SHED_SPACING_MS + 2000, 60_000, 500);
    for (const [name, id] of [
      ['the push behind (the oldest)', stalled],
      ['a push sharing an encoder', sharedA],
      ['the other sharing it', sharedB],
      ['the newest, in standby', standby],
    ] as const)
      t.equal((await find(id))?.counters.sheds, 0, `${name}: not shed`);
    t.equal((await find(transcoding))?.counters.sheds, 1, 'the shed push: shed once, not again');

    // The load passes: the shed push starts again.
    for (const pid of hogs.splice(0)) stopHog(pid);
    resume(stopped.pop()!);
    await waitFor(
      'the shed push running again',
      async () => (await find(transcoding))?.state === 'running',
      UNSHED_AFTER_MS[0] + 40_000,
      500,
    );
    t.pass('the shed push started again once the machine was calm');
  },
);
