import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';
import { isAlive, pidsMatching, waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { syntheticPublish, testFixture } from '../helpers/synthetic.js';

// A push that fails while live (its key refused on reconnect) stays listed with the reason,
// and a new startup of the same stream to the same URL replaces it instead of answering 409.

t.test(
  'a push that failed at runtime: listed with its reason, and a new startup to the same URL answers 200',
  async (t) => {
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    const { gw } = await syntheticPublish(
      t,
      { rtmp_push_restore_attempts: 2, rtmp_push_restore_interval_ms: 100 },
      'cam',
    );
    await keyframeCached(gw, 'cam');
    const rtmpUrl = receiver.url();
    const first = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl });
    t.equal(first.status, 200);

    receiver.refuse = { code: 'NetStream.Publish.BadName', description: 'stream key revoked' };
    receiver.dropAll();
    const failed = await waitFor(
      'the push to fail',
      async () => {
        const [push] = (await gw.post('/rest-api/push/find', { rtmpUrl })).body ?? [];
        return push?.state === 'failed' && push;
      },
      10_000,
    );
    t.match(failed.lastError, /stream key revoked/, 'find tells why');
    t.equal(failed.mediaSessionId, first.body.mediaSessionId);

    receiver.refuse = undefined;
    const second = await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl });
    t.equal(second.status, 200, `startup again: ${JSON.stringify(second.body)}`);
    t.not(second.body.mediaSessionId, first.body.mediaSessionId, 'a new push');
    const listed = (await gw.post('/rest-api/push/find', { rtmpUrl })).body;
    t.equal(listed.length, 1, 'the failed one was replaced');
    t.equal(listed[0].state, 'running');
    t.equal(
      (await gw.post('/rest-api/push/startup', { streamName: 'cam', rtmpUrl })).status,
      409,
      'a running one still conflicts',
    );
  },
);

t.test(
  'a failed startup says whose fault it was: the destination refusing, unreachable, or the gateway itself',
  async (t) => {
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    const { gw } = await syntheticPublish(t, {}, 'codes');
    await keyframeCached(gw, 'codes');
    receiver.refuse = { code: 'NetStream.Publish.BadName', description: 'no such stream key' };
    const refused = await gw.post('/rest-api/push/startup', { streamName: 'codes', rtmpUrl: receiver.url() });
    t.equal(refused.status, 500, "Web Call Server's status");
    t.match(refused.body, { error: 'destination_refused', message: /no such stream key/ });
    const closedPort = await gw.post('/rest-api/push/startup', {
      streamName: 'codes',
      rtmpUrl: 'rtmp://127.0.0.1:1/live',
    });
    t.match(closedPort.body, { error: 'destination_unreachable', message: /ECONNREFUSED/ });

    const { gw: broken } = await syntheticPublish(t, { ffmpeg_path: '/nonexistent/ffmpeg' }, 'codes');
    await keyframeCached(broken, 'codes');
    receiver.refuse = undefined;
    const local = await broken.post('/rest-api/push/startup', { streamName: 'codes', rtmpUrl: receiver.url() });
    t.equal(local.status, 500);
    t.match(local.body, { error: 'internal', message: /ffmpeg/ }, "the gateway's own fault");
  },
);

t.test(
  'a startup the machine does not get to in time is a 503 with Retry-After, and leaves nothing running',
  async (t) => {
    // An encoder starved of CPU: its process is stopped before it runs, so it never writes.
    const dir = await mkdtemp(join(tmpdir(), 'starved-ffmpeg-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const starved = join(dir, 'ffmpeg');
    await writeFile(starved, '#!/bin/sh\nkill -STOP $$\nexec ffmpeg "$@"\n', { mode: 0o755 });
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    const { gw } = await syntheticPublish(t, { ffmpeg_path: starved, ffmpeg_start_timeout_ms: 1500 }, 'busy');
    await keyframeCached(gw, 'busy');
    const started = fetch(`${gw.baseUrl}/rest-api/push/startup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ streamName: 'busy', rtmpUrl: receiver.url() }),
    });
    const pid = await waitFor('the encoder process', async () => (await pidsMatching(starved))[0], 10_000);
    const answer = await started;
    t.equal(answer.status, 503, "not the gateway's fault: try again later");
    t.equal(answer.headers.get('retry-after'), '5');
    t.match(await answer.json(), {
      error: 'unavailable',
      message: /push failed to start: ffmpeg wrote no output within 1500 ms/,
    });
    await waitFor('the starved process to be ended', () => !isAlive(pid), 10_000);
    t.equal(gw.ffmpeg.count, 0, 'no encoder left');
  },
);

t.test(
  'a push ended while it starts says why: its publisher lost (503, Retry-After), the stream ended (404), terminated (409)',
  async (t) => {
    // A destination that takes the connection and never answers the handshake: the push stays starting.
    const silent = createServer((socket) => socket.on('error', () => undefined).resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const rtmpUrl = `rtmp://127.0.0.1:${(silent.address() as AddressInfo).port}/live`;
    const gw = await startGateway({ webrtc_media_timeout_ms: 2000 });
    t.teardown(() => gw.close());

    /** Starts a push of `name` and resolves once it is listed as starting; `answer` is its startup's answer. */
    const starting = async (name: string) => {
      const answer = fetch(`${gw.baseUrl}/rest-api/push/startup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ streamName: name, rtmpUrl }),
      });
      const push = await waitFor(
        `${name} starting`,
        async () => (await gw.post('/rest-api/push/find', { streamName: name })).body?.[0],
        10_000,
      );
      t.equal(push.state, 'starting');
      return { answer, id: push.mediaSessionId as string };
    };

    const lost = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'lost');
    t.teardown(() => lost.stop());
    await keyframeCached(gw, 'lost');
    const lostPush = await starting('lost');
    await lost.vanish();
    const lostAnswer = await lostPush.answer;
    t.equal(lostAnswer.status, 503, 'the publisher may come back: try again');
    t.equal(lostAnswer.headers.get('retry-after'), '5');
    t.match(await lostAnswer.json(), {
      error: 'unavailable',
      message: /push failed to start: the stream's publisher was lost \(/,
    });

    const ended = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'ended');
    await keyframeCached(gw, 'ended');
    const endedPush = await starting('ended');
    await ended.stop();
    const endedAnswer = await endedPush.answer;
    t.equal(endedAnswer.status, 404);
    t.match(await endedAnswer.json(), { error: 'not_found', message: /push failed to start: the stream ended \(/ });

    const terminated = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'terminated');
    t.teardown(() => terminated.stop());
    await keyframeCached(gw, 'terminated');
    const terminatedPush = await starting('terminated');
    t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: terminatedPush.id })).status, 200);
    const terminatedAnswer = await terminatedPush.answer;
    t.equal(terminatedAnswer.status, 409);
    t.match(await terminatedAnswer.json(), { error: 'conflict', message: 'push failed to start: it was terminated' });
    await waitFor('no ffmpeg left', () => gw.ffmpeg.count === 0, 5000);
    t.equal((await gw.post('/rest-api/push/find_all')).status, 404, 'nothing listed');
  },
);
