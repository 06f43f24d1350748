import t from 'tap';
import { waitFor } from '../../kit/processes.js';
import { avOffsetMs, RtmpReceiver, type RtmpMediaMessage } from '../../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway } from '../helpers/gateway.js';
import { pushOnceCached } from '../helpers/pushes.js';
import { testFixture } from '../helpers/synthetic.js';

// Real senders' sound cards drift from the clock that stamps their video: a minute at 0.5 % stands
// for a day at ±60 ppm. Two publishers, one fast and one slow, each pushed through the gateway to an
// RTMP server, which reports every message with its arrival.

/** How long each sender drifts, and the window (ms) over which the offset is measured at each end. */
const DRIFT_MS = 60_000;
const WINDOW_MS = 5_000;
/** AAC frames are 21.3 ms apart: a step of two (42.7 ms) or more is sound missing. */
const GAP_MS = 40;

t.test(
  "a sender's sound card 0.5 % fast, another's 0.5 % slow, a third fast without sender reports, for a minute: the sound holds against the pictures at the RTMP server, and none is missing",
  async (t) => {
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    const gw = await startGateway();
    t.teardown(() => gw.close());
    // The third sends no RTCP sender reports, as OBS's WHIP output: the gateway reads none anyway.
    const senders = { fast: 0.005, slow: -0.005, 'fast-no-reports': 0.005 };
    const media = new Map<string, RtmpMediaMessage[]>();
    receiver.on('media', (m) => {
      if (m.sequenceHeader) return;
      const list = media.get(m.publish.streamName) ?? [];
      list.push(m);
      media.set(m.publish.streamName, list);
    });
    for (const [name, skew] of Object.entries(senders)) {
      const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, name, {
        audioClockSkew: skew,
        senderReports: !name.endsWith('no-reports'),
      });
      t.teardown(() => publisher.stop());
      await pushOnceCached(t, gw, name, `${receiver.url()}/${name}`);
    }
    const arrived = (name: string, kind: 'audio' | 'video') => (media.get(name) ?? []).filter((m) => m.kind === kind);
    await waitFor(
      'both pushes carrying sound and pictures',
      () =>
        Object.keys(senders).every((name) => arrived(name, 'audio').length > 0 && arrived(name, 'video').length > 0),
      20_000,
    );
    const startedAt = new Map(Object.keys(senders).map((name) => [name, media.get(name)![0]!.arrivalMs]));
    await waitFor(
      `${DRIFT_MS / 1000} s of both pushes at the RTMP server`,
      () => Object.keys(senders).every((name) => media.get(name)!.at(-1)!.arrivalMs - startedAt.get(name)! >= DRIFT_MS),
      DRIFT_MS + 60_000,
    );
    for (const name of Object.keys(senders)) {
      const list = media.get(name)!;
      const from = startedAt.get(name)!;
      const end = list.at(-1)!.arrivalMs;
      const before = avOffsetMs(list, from, from + WINDOW_MS);
      const after = avOffsetMs(list, end - WINDOW_MS, end);
      t.ok(
        Math.abs(after - before) <= 30,
        `${name}: the sound against the pictures moved ${(after - before).toFixed(0)} ms in a minute ` +
          `(${before.toFixed(0)} ms at the start, ${after.toFixed(0)} ms at the end)`,
      );
      // The sound at the server is unbroken: each AAC frame (1024 samples) the one before's length on.
      const audio = arrived(name, 'audio').map((m) => m.timestamp);
      const gaps = audio.slice(1).filter((time, i) => time - audio[i]! > GAP_MS);
      t.same(gaps, [], `${name}: no gap in the sound (${audio.length} AAC frames)`);
      const spanMs = audio.at(-1)! - audio[0]!;
      const heardMs = ((audio.length - 1) * 1024) / 48;
      t.ok(
        Math.abs(spanMs - heardMs) <= 50,
        `${name}: ${heardMs.toFixed(0)} ms of AAC frames over ${spanMs} ms of timestamps`,
      );
    }
  },
);

/**
 * A publisher's first 3 s of `held` come at once, late, then on time: its push's sound starts with
 * its pictures, stays with them, and none of it is lost.
 */
function heldFirst(title: string, held: { holdFirstMs: number } | { holdFirstAudioMs: number }): void {
  t.test(title, async (t) => {
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    const gw = await startGateway();
    t.teardown(() => gw.close());
    const media: RtmpMediaMessage[] = [];
    receiver.on('media', (m) => !m.sequenceHeader && media.push(m));
    // The push starts with the publish (the SDK's rtmpUrl), so it is there when the first packets come.
    const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'held', {
      sdk: { rtmpUrl: `${receiver.url()}/held`, rtmpTransponderFullUrl: true },
      ...held,
    });
    t.teardown(() => publisher.stop());
    const of = (kind: 'audio' | 'video') => media.filter((m) => m.kind === kind);
    await waitFor(
      '12 s of pictures at the RTMP server',
      () => {
        const video = of('video');
        return video.length > 0 && video.at(-1)!.timestamp - video[0]!.timestamp >= 12_000;
      },
      40_000,
    );
    const video = of('video');
    const audio = of('audio');
    t.ok(audio.length > 0, 'sound arrived');
    const late = audio[0]!.timestamp - video[0]!.timestamp;
    t.ok(late <= 2000, `the sound starts ${late} ms after the pictures`);
    const times = audio.map((m) => m.timestamp);
    const gaps = times.flatMap((time, i) =>
      i > 0 && time - times[i - 1]! > GAP_MS ? [`${time - times[i - 1]!} ms at ${time - times[0]!} ms`] : [],
    );
    t.same(gaps, [], `no gap in the sound (${audio.length} AAC frames)`);
    const heardMs = (audio.length * 1024) / 48;
    const shownMs = video.at(-1)!.timestamp - video[0]!.timestamp;
    t.ok(heardMs >= shownMs - 2000, `${heardMs.toFixed(0)} ms of sound for ${shownMs} ms of pictures`);
    // Timestamps less arrival, sound against pictures: the sound's way through ffmpeg included
    // (70-130 ms alone on the machine, 370 ms once on a busy one). A late track anchored on its first
    // packet would sit 3 s off.
    const offset = avOffsetMs(media, media.at(-1)!.arrivalMs - 3000, Infinity);
    t.ok(Math.abs(offset) <= 500, `the sound against the pictures at the end: ${offset.toFixed(0)} ms`);
  });
}

heldFirst(
  "a stream's first 3 s read at once, late (a busy gateway): its push's sound starts with the pictures, none of it lost",
  { holdFirstMs: 3000 },
);
heldFirst(
  "a stream's first 3 s of sound read at once, late, its pictures on time: the sound is placed with the pictures it was captured with",
  { holdFirstAudioMs: 3000 },
);
