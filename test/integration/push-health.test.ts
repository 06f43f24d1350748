import { join } from 'node:path';
import t from 'tap';
import { loadFixture } from '../../kit/fixture.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// Ingest health, measured on what a push sends. A camera whose keyframes come 6 s apart and that
// ignores keyframe requests (as some hardware encoders do), passed through to a YouTube preset:
// what YouTube's dashboard would say is in find, the metrics and a webhook. A camera as Chromium
// sends it, beside it, is good.

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
const SIX_SECOND_GOP = {
  tag: '720p30-gop6',
  picture: 'testsrc2=s=1280x720:r=30:d=10',
  toneHz: 440,
  keyframeS: 6,
};
const SECRET = 'health-webhook-secret';

interface Health {
  status: string;
  issues: string[];
  measures: Record<string, number | boolean | null>;
}

t.test(
  "a camera with keyframes 6 s apart, pushed to a YouTube preset: told bad within 15 s, as YouTube's dashboard would",
  async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    const hooks = await WebhookReceiver.start(SECRET);
    t.teardown(() => hooks.stop());
    const webhook = {
      id: 'app',
      url: hooks.url,
      secret: SECRET,
      events: ['transponder.health' as const],
      timeout_ms: 2000,
      max_attempts: 3,
      queue_limit: 100,
    };
    const gw = await startGateway({ webhooks: [webhook] });
    t.teardown(() => gw.close());
    const slow = await SyntheticPublisher.publish(loadFixture(FIXTURES, SIX_SECOND_GOP), gw.baseUrl, 'slow', {
      ignoreKeyframeRequests: true,
    });
    t.teardown(() => slow.stop());
    const fine = await SyntheticPublisher.publish(loadFixture(join(FIXTURES)), gw.baseUrl, 'fine');
    t.teardown(() => fine.stop());
    await keyframeCached(gw, 'slow');
    await keyframeCached(gw, 'fine');

    const slowPush = await gw.post('/rest-api/push/startup', {
      streamName: 'slow',
      rtmpUrl: `${nginx.url()}/slow`,
      rtmpTransponderFullUrl: true,
      platform: 'youtube',
    });
    t.equal(slowPush.status, 200, JSON.stringify(slowPush.body));
    t.match(slowPush.body, { transcoding: false, platform: 'youtube' }, 'passed through, checked against YouTube');
    const finePush = await gw.post('/rest-api/push/startup', {
      streamName: 'fine',
      rtmpUrl: `${nginx.url()}/fine`,
      rtmpTransponderFullUrl: true,
      platform: 'youtube',
    });
    t.equal(finePush.status, 200, JSON.stringify(finePush.body));
    const startedAt = performance.now();

    const healthOf = async (stream: string): Promise<Health | undefined> =>
      (await gw.post('/rest-api/push/find', { streamName: stream })).body?.[0]?.health;
    let slowHealth: Health | undefined;
    await waitFor(
      'the slow camera told bad',
      async () => {
        slowHealth = await healthOf('slow');
        return slowHealth?.status === 'bad';
      },
      20_000,
      250,
    );
    const toldInS = (performance.now() - startedAt) / 1000;
    t.ok(toldInS <= 15, `told ${toldInS.toFixed(1)} s after the startup answered`);
    t.same(
      slowHealth!.issues,
      ['keyframe interval 6.0 s (YouTube: at most 4 s)'],
      'the keyframe interval alone is off',
    );
    t.match(slowHealth!.measures, { audio: true, audioSampleRate: 48000, sizeChanges: 0 });
    t.ok((slowHealth!.measures.fps as number) > 25, `its frame rate: ${slowHealth!.measures.fps}`);

    const fineHealth = await waitFor('the Chromium-like camera measured', () => healthOf('fine'), 15_000, 250);
    t.equal(fineHealth.status, 'good', JSON.stringify(fineHealth));
    t.ok(
      (fineHealth.measures.keyframeIntervalMaxS as number) <= 2.25,
      `its keyframes ${fineHealth.measures.keyframeIntervalMaxS} s apart at most`,
    );
    t.ok((fineHealth.measures.videoKbps as number) > 1000, `its video bitrate: ${fineHealth.measures.videoKbps} kb/s`);

    const metrics = await (await fetch(`${gw.baseUrl}/metrics`)).text();
    const gauge = (name: string, id: string): number =>
      Number(new RegExp(`^${name}\\{[^}]*media_session_id="${id}"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
    t.equal(gauge('gateway_push_health_status', slowPush.body.mediaSessionId), 2, 'bad, in the metrics');
    t.equal(gauge('gateway_push_health_status', finePush.body.mediaSessionId), 0, 'good');
    t.equal(gauge('gateway_push_sent_keyframe_interval_seconds', slowPush.body.mediaSessionId), 6);

    const told = await waitFor(
      'the webhook',
      async () =>
        hooks.delivered.find(
          (h) =>
            h.type === 'transponder.health' &&
            h.body.data.mediaSessionId === slowPush.body.mediaSessionId &&
            (h.body.data.health as Health).status === 'bad',
        ),
      10_000,
    );
    t.match(told.body.data, { stream: 'slow', destination: `${nginx.url()}/***` }, 'the destination masked');
    t.same((told.body.data.health as Health).issues, ['keyframe interval 6.0 s (YouTube: at most 4 s)']);
  },
);
