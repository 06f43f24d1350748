import { readFileSync } from 'node:fs';
import t from 'tap';
import { sleep, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { awaitPushState } from '../helpers/pushes.js';
import { syntheticPublish } from '../helpers/synthetic.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// Prometheus metrics per push and per publisher, scraped while a real push runs (werift publisher
// over WHIP, nginx-rtmp as the destination, restarted once).

const KEY = 'canary-metrics-key-9731';

/** The samples of one metric, as `{labels, value}`. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const found: { labels: Record<string, string>; value: number }[] = [];
  for (const match of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    found.push({ labels, value: Number(match[2]) });
  }
  return found;
}

t.test(
  'a push and its publisher, scraped: counters grow, the state moves through reconnecting, no key anywhere',
  async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const hooks = await WebhookReceiver.start('metrics-webhook-secret');
    t.teardown(() => hooks.stop());
    const webhook = {
      id: 'app',
      url: hooks.url,
      secret: 'metrics-webhook-secret',
      events: [],
      timeout_ms: 2000,
      max_attempts: 3,
      queue_limit: 100,
    };
    const { gw } = await syntheticPublish(t, { webhooks: [webhook] }, 'cam');
    const started = await gw.post('/rest-api/push/startup', {
      streamName: 'cam',
      rtmpUrl: `${nginx.url()}/${KEY}`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(started.status, 200, JSON.stringify(started.body));
    const id = started.body.mediaSessionId as string;
    await awaitPushState(gw, 'cam', 'running', [], 10000);
    const scrape = async (): Promise<string> => (await fetch(`${gw.baseUrl}/metrics`)).text();

    await sleep(1500);
    const first = await scrape();
    await sleep(2000);
    const second = await scrape();
    const value = (text: string, name: string): number =>
      samples(text, name).find((s) => s.labels.media_session_id === id)?.value ?? NaN;
    t.same(samples(second, 'gateway_push_state').find((s) => s.labels.state === 'running')?.labels, {
      stream: 'cam',
      media_session_id: id,
      destination_host: '127.0.0.1',
      state: 'running',
    });
    t.equal(samples(second, 'gateway_push_state').filter((s) => s.value === 1).length, 1, 'one state at a time');
    for (const name of ['gateway_push_sent_bytes_total', 'gateway_push_frames_total']) {
      t.ok(
        value(second, name) > value(first, name) && value(first, name) > 0,
        `${name} grows: ${value(first, name)} -> ${value(second, name)}`,
      );
    }
    const frames = value(second, 'gateway_push_frames_total') - value(first, 'gateway_push_frames_total');
    t.ok(frames > 45 && frames < 75, `${frames} frames in ~2 s`);
    const stream = (name: string): number => samples(second, name).find((s) => s.labels.stream === 'cam')?.value ?? NaN;
    t.equal(stream('gateway_publisher_width_pixels'), 1280);
    t.equal(stream('gateway_publisher_height_pixels'), 720);
    t.ok(
      stream('gateway_publisher_received_bits_per_second') > 1.5e6,
      `received ${stream('gateway_publisher_received_bits_per_second')} b/s`,
    );
    t.ok(stream('gateway_publisher_packets_total') > 0);
    t.ok(stream('gateway_publisher_keyframe_requests_total') >= 1, 'keyframe requests counted');
    t.equal(stream('gateway_publisher_nacks_sent_total'), 0, 'no NACK on loopback');

    const restarted = nginx.restart(1500); // the destination goes away for 1.5 s
    await waitFor(
      'reconnecting, seen by a scrape',
      async () =>
        samples(await scrape(), 'gateway_push_state').some((s) => s.labels.state === 'reconnecting' && s.value === 1),
      5000,
      100,
    );
    t.pass('the state gauge showed reconnecting');
    await restarted;
    await waitFor(
      'running again, seen by a scrape',
      async () =>
        samples(await scrape(), 'gateway_push_state').some((s) => s.labels.state === 'running' && s.value === 1),
      15000,
      200,
    );
    const after = await scrape();
    t.ok(value(after, 'gateway_push_reconnects_total') >= 1, 'a reconnect counted');
    t.ok(value(after, 'gateway_push_drops_total') >= 1, 'a drop counted');

    const count = (name: string): number => Number(after.match(new RegExp(`^${name}_count (\\S+)$`, 'm'))?.[1]);
    const sum = (name: string): number => Number(after.match(new RegExp(`^${name}_sum (\\S+)$`, 'm'))?.[1]);
    t.equal(count('gateway_push_startup_seconds'), 1, 'one startup timed');
    t.ok(
      sum('gateway_push_startup_seconds') > 0 && sum('gateway_push_startup_seconds') < 1,
      `startup to first frame ${sum('gateway_push_startup_seconds')} s`,
    );
    t.equal(count('gateway_push_reconnect_seconds'), 1, 'one outage timed');
    t.ok(
      sum('gateway_push_reconnect_seconds') > 1.4 && sum('gateway_push_reconnect_seconds') < 10,
      `outage ${sum('gateway_push_reconnect_seconds')} s (the destination was down 1.5 s)`,
    );

    t.ok(
      samples(after, 'gateway_push_acknowledged_age_seconds').some(
        (x) => x.labels.media_session_id === id && x.value >= -1,
      ),
      'the acknowledgement age is shown',
    );
    const refused = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl: 'rtmp://127.0.0.1:1/live' });
    t.equal(refused.status, 500, 'a destination nobody listens on');
    await waitFor(
      'the failure counted',
      async () =>
        samples(await scrape(), 'gateway_push_failures_total').some(
          (x) => x.labels.destination_host === '127.0.0.1' && x.value === 1,
        ),
      5000,
    );
    t.pass('a failed push counted by its destination host');

    // The Grafana dashboard shipped in config/ asks only for metrics the gateway has.
    const dashboard = readFileSync(new URL('../../config/grafana/gateway-dashboard.json', import.meta.url), 'utf8');
    const asked = new Set([...dashboard.matchAll(/\b(gateway_[a-z_]+)/g)].map((m) => m[1]!.replace(/_bucket$/, '')));
    const exposed = new Set([...after.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]!));
    t.ok(asked.size >= 20, `the dashboard asks for ${asked.size} metrics`);
    t.same(
      [...asked].filter((name) => !exposed.has(name)),
      [],
      'every metric of the dashboard is exposed',
    );

    for (const text of [first, second, after]) {
      t.notOk(text.includes(KEY), 'no stream key in any label or value');
      t.notOk(text.includes('rtmp://'), 'no URL');
    }

    await gw.post('/rest-api/push/terminate', { mediaSessionId: id });
    await waitFor(
      'the push leaves the metrics',
      async () => samples(await scrape(), 'gateway_push_frames_total').length === 0,
      5000,
    );
    t.pass('a push that ended is gone from the next scrape');
  },
);
