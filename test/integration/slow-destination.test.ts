import { keyframeCached } from '../helpers/pushes.js';
import t from 'tap';
import { sleep } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { syntheticPublish } from '../helpers/synthetic.js';
import { ThrottledProxy } from '../helpers/throttled-proxy.js';

// One stream pushed to two destinations: one behind a proxy that reads 50 KB/s (a 2.5 Mb/s
// stream needs ~320 KB/s), one direct. The slow one gets current media with gaps, its lag bounded;
// the direct one loses nothing; neither reconnects.

t.test(
  'a destination reading at 50 KB/s: lag bounded, drops counted, the other destination loses nothing',
  async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const proxy = await ThrottledProxy.start(nginx.rtmpPort, 50 * 1024);
    t.teardown(() => proxy.close());
    const maxLagMs = 2000;
    const { gw } = await syntheticPublish(t, { rtmp_push_max_lag_ms: maxLagMs }, 'two');
    await keyframeCached(gw, 'two');
    const slow = await gw.post('/rest-api/push/startup', {
      streamName: 'two',
      rtmpUrl: `rtmp://127.0.0.1:${proxy.port}/live/slow`,
      rtmpTransponderFullUrl: true,
    });
    const fast = await gw.post('/rest-api/push/startup', {
      streamName: 'two',
      rtmpUrl: `${nginx.url()}/fast`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(slow.status, 200, 'the slow destination accepted');
    t.equal(fast.status, 200, 'the direct destination accepted');

    // The link starts with the cached group of pictures (~600 KB at once, so the destination starts
    // on a keyframe): at 50 KB/s that alone takes ~12 s to arrive. From then on the guard bounds it.
    const lagSeries: number[] = [];
    const startedAt = Date.now();
    for (let i = 0; i < 48; i++) {
      await sleep(500);
      lagSeries.push((gw.pushService.get(slow.body.mediaSessionId).toJSON() as any).counters.lagMs);
    }
    const seconds = (Date.now() - startedAt) / 1000;
    const slowPush = gw.pushService.get(slow.body.mediaSessionId).toJSON() as any;
    const fastPush = gw.pushService.get(fast.body.mediaSessionId).toJSON() as any;
    const settled = lagSeries.slice(-16);
    const worst = Math.max(...settled);
    t.comment(`slow destination lag (ms) every 0.5 s: ${lagSeries.join(' ')}`);
    t.comment(
      `slow: ${slowPush.counters.frames} frames sent, ${slowPush.counters.framesDropped} dropped; direct: ${fastPush.counters.frames} sent in ${seconds.toFixed(1)} s`,
    );
    t.ok(
      slowPush.counters.framesDropped > 0,
      `the slow destination had frames dropped (${slowPush.counters.framesDropped})`,
    );
    t.ok(worst <= 1.5 * maxLagMs, `over the last 8 s its lag stayed within ${1.5 * maxLagMs} ms (worst ${worst} ms)`);
    t.ok(
      settled.some((lag) => lag < maxLagMs / 2),
      'and it caught up again and again (it gets current media)',
    );
    t.equal(slowPush.state, 'running', 'the slow destination is not reconnected: it is slow, not stalled');
    t.equal(slowPush.counters.reconnects, 0);
    t.equal(fastPush.state, 'running');
    t.equal(fastPush.counters.framesDropped, 0, 'the direct destination had nothing dropped');
    t.equal(fastPush.counters.framesLost, 0, 'and nothing lost');
    t.ok(
      fastPush.counters.frames >= 0.95 * 30 * seconds,
      `and got every frame (${fastPush.counters.frames} in ${seconds.toFixed(1)} s at 30 fps)`,
    );
  },
);
