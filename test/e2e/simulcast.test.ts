import t from 'tap';
import { whipPublish } from '../helpers/e2e.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';

// Chromium publishing three simulcast layers of H.264 over WHIP (Debian's Chromium encodes each
// with OpenH264: 1280x720, 640x360 and 320x180). The gateway takes them all; a push of the stream
// gets the top layer, passed through, or the layer it asks for.

// A layer no push takes is let go after 3 s (30 s by default).
const stage = useStage([{ webrtc_simulcast_layer_idle_ms: 3000 }]);

t.test(
  'three simulcast layers over WHIP: pushes of the top one, the low one, one up to a height, and one pinned',
  async (t) => {
    await stage.browser.page.goto(stage.gw.baseUrl + '/health');
    const whip = await whipPublish(stage.browser.page, stage.gw.baseUrl + '/whip/layers', true, true);
    t.equal(whip.status, 201, whip.answer);
    t.match(whip.offer, /a=simulcast:send l;m;h/, 'Chromium offered three layers');
    t.match(whip.answer, /a=simulcast:recv l;m;h/, 'the answer receives them');
    t.match(whip.answer, /a=rid:l recv[\s\S]*a=rid:m recv[\s\S]*a=rid:h recv/);
    t.match(whip.answer, /a=extmap:\d+ urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id/);
    await waitFor('the WebRTC publish', async () => stage.gw.publishers.get('layers')?.state === 'publishing', 10_000);
    const layersSent = await waitFor(
      'Chromium sending its three layers',
      async () => {
        const sizes = await stage.browser.page.evaluate(async () => {
          const seen: string[] = [];
          (await (window as any).pc.getStats()).forEach((s: any) => {
            if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesSent > 0)
              seen.push(`${s.rid}:${s.frameWidth}x${s.frameHeight}:${s.encoderImplementation}`);
          });
          return seen.sort();
        });
        return sizes.length === 3 ? sizes : undefined;
      },
      15_000,
      200,
    );
    t.comment(`layers sent: ${layersSent.join(', ')}`);

    const push = async (
      name: string,
      fields: object = {},
    ): Promise<{ mediaSessionId: string; layer?: string; transcoding: boolean }> => {
      const res = await stage.gw.post('/rest-api/push/startup', {
        streamName: 'layers',
        rtmpUrl: `${stage.nginx.url()}/${name}`,
        rtmpTransponderFullUrl: true,
        ...fields,
      });
      t.equal(res.status, 200, `${name}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const top = await push('top');
    const low = await push('low', { layer: 'low' });
    const upTo400 = await push('up-to-400', { layer: 400 });
    const pinned = await push('pinned', { layerPolicy: 'pin' });
    t.match(
      [top, low, upTo400, pinned].map((p) => [p.layer, p.transcoding]),
      [
        ['high', false],
        ['low', false],
        ['medium', false],
        ['high', false],
      ],
      'each sends its layer as it comes',
    );
    const recorded = (name: string, frames: number): Promise<unknown> =>
      waitFor(
        `${frames} frames of ${name} recorded`,
        async () => ((await probe(stage.nginx.recording(name)).catch(() => undefined))?.video.length ?? 0) >= frames,
        30_000,
        250,
      );
    for (const name of ['top', 'low', 'up-to-400']) await recorded(name, 40);
    const sizes = await Promise.all(
      ['top', 'low', 'up-to-400'].map(async (name) => {
        const video = (await probe(stage.nginx.recording(name))).streams.find((s) => s.codec_type === 'video');
        return `${video?.codec_name} ${video?.width}x${video?.height}`;
      }),
    );
    t.same(
      sizes,
      ['h264 1280x720', 'h264 320x180', 'h264 640x360'],
      'the top layer, the low one, the tallest up to 400',
    );
    // Every layer's sound is the stream's, timed once: pushes of different layers hold it alike.
    const stream = stage.gw.publishers.get('layers')!;
    const lowLayer = await stream.layer(0);
    const now = Math.round(Math.random() * 2 ** 31);
    t.type(stream.captureMs('audio', now), 'number', 'the stream times its sound');
    t.same(
      [now, now + 48_000, now - 96_000].map((ts) => lowLayer.captureMs('audio', ts)),
      [now, now + 48_000, now - 96_000].map((ts) => stream.captureMs('audio', ts)),
      "the low layer's sound on the stream's own anchor",
    );

    // The browser's bandwidth to the gateway falls (the gateway's REMB says so, its publisher's
    // transport capped as a congested link would make it): it stops its top layer. The push that switches goes on with the next one down, the pinned one holds standby; once
    // the bandwidth is back, so is the top layer.
    const transport = (stage.gw.publishers.get('layers') as any).session.transports[0];
    const find = async (
      id: string,
    ): Promise<{ layer?: string; state: string; width: number; resolutionChanges: number }> =>
      (await stage.gw.post('/rest-api/push/find_all', {})).body.find(
        (p: { mediaSessionId: string }) => p.mediaSessionId === id,
      );
    const browserSends = async (): Promise<string> =>
      stage.browser.page.evaluate(async () => {
        const seen: string[] = [];
        (await (window as any).pc.getStats()).forEach((s: any) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video')
            seen.push(
              `${s.rid}:${s.frameWidth}x${s.frameHeight}:${s.framesSent}:${s.ssrc}:${s.qualityLimitationReason}`,
            );
        });
        return seen.sort().join(' ');
      });
    let cutAt = Date.now();
    await transport.setMaxIncomingBitrate(700_000);
    await waitFor(
      'the top push on a lower layer',
      async () => (await find(top.mediaSessionId)).layer !== 'high',
      30_000,
      100,
    );
    t.comment(`top layer stopped after ${Date.now() - cutAt} ms: ${await browserSends()}`);
    await waitFor(
      'the pinned push in standby',
      async () => (await find(pinned.mediaSessionId)).state === 'standby',
      15_000,
      100,
    );
    t.match(await find(low.mediaSessionId), { layer: 'low', state: 'running' }, 'the low one goes on');
    cutAt = Date.now();
    await transport.setMaxIncomingBitrate(5_000_000);
    await waitFor(
      'the top push on the high layer again',
      async () => (await find(top.mediaSessionId)).layer === 'high',
      60_000,
      100,
    );
    t.comment(`top layer back after ${Date.now() - cutAt} ms: ${await browserSends()}`);
    await waitFor(
      'the pinned push live again',
      async () => (await find(pinned.mediaSessionId)).state === 'running',
      15_000,
      100,
    );
    const back = await find(top.mediaSessionId);
    t.match(back, { state: 'running', width: 1280 }, 'the top push: back at 1280x720');
    t.ok(back.resolutionChanges >= 2, `the top push: down and back up (${back.resolutionChanges} size changes)`);
    t.match(
      await find(pinned.mediaSessionId),
      { state: 'running', width: 1280, resolutionChanges: 0 },
      'the pinned push: one size throughout',
    );

    // The browser stops its low layer alone: the engine forwards the next one up for it, a larger
    // picture than the low push asked for. The push holds standby instead, and takes the low layer
    // again once it is back; the push of the middle layer is not disturbed.
    const lowActive = (active: boolean): Promise<void> =>
      stage.browser.page.evaluate(async (active) => {
        const sender = (window as any).pc.getSenders().find((s: any) => s.track?.kind === 'video');
        const parameters = sender.getParameters();
        for (const encoding of parameters.encodings) if (encoding.rid === 'l') encoding.active = active;
        await sender.setParameters(parameters);
      }, active);
    await lowActive(false);
    await waitFor(
      'the low push in standby',
      async () => (await find(low.mediaSessionId)).state === 'standby',
      15_000,
      100,
    );
    t.match(await find(upTo400.mediaSessionId), { layer: 'medium', state: 'running' }, 'the middle one goes on');
    const lowOff = await browserSends();
    await lowActive(true);
    await waitFor(
      'the low push live again',
      async () => (await find(low.mediaSessionId)).state === 'running',
      30_000,
      100,
    );
    t.comment(`low layer off: ${lowOff}; on again: ${await browserSends()}`);
    t.match(
      await find(low.mediaSessionId),
      { layer: 'low', width: 320, resolutionChanges: 0 },
      'the low push: never sent a larger layer',
    );

    t.same(stream.layersTaken, [0, 1], 'the low and the middle layer are taken (the top one is the stream itself)');
    for (const id of [top, low, upTo400, pinned].map((p) => p.mediaSessionId))
      t.equal((await stage.gw.post('/rest-api/push/terminate', { mediaSessionId: id })).status, 200);
    await waitFor('the lower layers let go', async () => stream.layersTaken.length === 0, 20_000, 100);
    t.pass('no push takes the lower layers: they are let go, their keyframe requests with them');
  },
);
