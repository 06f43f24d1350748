import { createSocket, type Socket } from 'node:dgram';
import { stat } from 'node:fs/promises';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import pino from 'pino';
import t, { type Test } from 'tap';
import { probe } from '../../kit/probe.js';
import { sleep, startProcess, stopProcess, waitFor } from '../../kit/processes.js';
import { avOffsetMs, RtmpReceiver, type RtmpMediaMessage } from '../../kit/rtmp-receiver.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { monotonicMs } from '../../src/core/clock.js';
import { FfmpegSupervisor } from '../../src/ffmpeg/supervisor.js';
import { Mixer } from '../../src/mixers/mixer.js';
import type { InputSource } from '../../src/mixers/relay.js';
import type { Publisher } from '../../src/publishers/publisher.js';
import { RtmpPushClient } from '../../src/rtmp/client.js';
import { startGateway } from '../helpers/gateway.js';
import { pushOnceCached } from '../helpers/pushes.js';
import { fixtureFlvVideo } from '../helpers/flv-video.js';
import { mixerSpec } from '../helpers/mixer-spec.js';
import { testFixture } from '../helpers/synthetic.js';
import type { AudioPacket, MediaSink } from '../../src/media/sinks.js';

// What days of streaming do to a push, reached without waiting for them: each counter is set just
// before its limit, then run through it with real components.

const HOUR_MS = 3_600_000;

/** A push of a publisher to an RTMP server, every media message that arrives kept. */
async function pushed(
  t: Test,
  name: string,
  options: Parameters<typeof SyntheticPublisher.publish>[3],
): Promise<{ publisher: SyntheticPublisher; media: RtmpMediaMessage[] }> {
  const receiver = await RtmpReceiver.start();
  t.teardown(() => receiver.close());
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, name, options);
  t.teardown(() => publisher.stop());
  const media: RtmpMediaMessage[] = [];
  receiver.on('media', (m) => !m.sequenceHeader && media.push(m));
  await pushOnceCached(t, gw, name, `${receiver.url()}/${name}`);
  return { publisher, media };
}

/** The steps between one kind's RTMP timestamps, in order of arrival. */
function steps(media: RtmpMediaMessage[], kind: 'audio' | 'video'): number[] {
  const times = media.filter((m) => m.kind === kind).map((m) => m.timestamp);
  return times.slice(1).map((time, i) => time - times[i]!);
}

t.test(
  "RTP time: the 32-bit field's wrap, then a leap of 2^31 ticks on video and sound (a new timeline each): the push's timeline goes on evenly",
  async (t) => {
    // Both fields wrap two seconds in.
    const { publisher, media } = await pushed(t, 'wrapping', {
      firstVideoTimestamp: 2 ** 32 - 2 * 90000,
      firstAudioTimestamp: 2 ** 32 - 2 * 48000,
    });
    await waitFor(
      '4 s of video at the destination, past the wrap',
      () => media.filter((m) => m.kind === 'video').length >= 120,
      20_000,
    );
    const before = avOffsetMs(media, media.at(-1)!.arrivalMs - 1000, Infinity);
    // A leap of 2^31 ticks in one step: a sender's clock that leapt, taken as a new timeline (the
    // unit tests cross 2^31 ticks from the first packet by ordinary steps).
    publisher.leapRtpTime('video', 2 ** 31);
    const leaptAt = media.length;
    await sleep(1000);
    publisher.leapRtpTime('audio', 2 ** 31);
    await waitFor(
      '3 s more of video',
      () => media.slice(leaptAt).filter((m) => m.kind === 'video').length >= 90,
      20_000,
    );
    const video = steps(media, 'video');
    const audio = steps(media, 'audio');
    t.same(
      video.filter((step) => step <= 5 || step > 100),
      [],
      `every video frame 33 ms on (or so) from the one before (${video.length} steps): none held at 1 ms, none skipping`,
    );
    t.same(
      audio.filter((step) => step <= 0 || step > 100),
      [],
      `the sound moves on evenly (${audio.length} steps)`,
    );
    const after = avOffsetMs(media, media.at(-1)!.arrivalMs - 1000, Infinity);
    t.ok(
      Math.abs(after - before) < 40,
      `the sound against the pictures: ${before.toFixed(0)} ms before, ${after.toFixed(0)} ms after`,
    );
  },
);

t.test(
  'RTMP timestamps past 2^24 ms (extended timestamps on every chunk) and past 2^32 ms (a clean wrap): nginx-rtmp and ffmpeg follow',
  async (t) => {
    const nginx = await NginxRtmp.start();
    t.teardown(() => nginx.stop());
    // The fixture's H.264 as FLV video tags: large frames, many chunks each, whose type-3 chunks
    // repeat the extended timestamp.
    const { header, frame } = fixtureFlvVideo();
    for (const [name, startMs] of [
      ['past-2-24', 2 ** 24 - 1500],
      ['past-2-32', 2 ** 32 - 1500],
    ] as const) {
      const client = await RtmpPushClient.publish({
        protocol: 'rtmp',
        address: '127.0.0.1',
        port: nginx.rtmpPort,
        host: 'localhost',
        app: 'live',
        tcUrl: `${nginx.url()}`,
        streamName: name,
        query: '',
        flashVer: 'FMLE/3.0 (compatible; test)',
        timeoutMs: 5000,
      });
      // ffmpeg watching live from the start: what a platform's transcoder does with the times.
      const watched = `${nginx.dir}/${name}-watched.flv`;
      const watcher = startProcess('ffmpeg', [
        '-nostdin',
        '-loglevel',
        'error',
        '-analyzeduration',
        '300000',
        '-i',
        `${nginx.url()}/${name}`,
        '-an',
        '-c',
        'copy',
        '-f',
        'flv',
        '-y',
        watched,
      ]);
      t.teardown(() => stopProcess(watcher));
      await sleep(500);
      client.writeVideo(startMs >>> 0, header);
      // 3 s of 30 fps video, 1.5 s either side of the limit, in real time.
      for (let i = 0; i < 90; i++) {
        const at = startMs + Math.round((i * 1000) / 30);
        client.writeVideo(at >>> 0, frame(i));
        client.writeAudio(at >>> 0, Buffer.from([0xaf, 1, 0x21, 0x10]));
        await sleep(33);
      }
      await sleep(1000);
      await client.close();
      // nginx-rtmp keeps a player waiting for the next publish: ffmpeg is stopped once it has written
      // what it took (it finishes its file).
      await waitFor(
        `${name}: what ffmpeg took written`,
        async () => ((await stat(watched).catch(() => undefined))?.size ?? 0) > 100_000,
        10_000,
      );
      await stopProcess(watcher);
      const recorded = await probe(nginx.recording(name));
      const times = recorded.video.map((p) => Number(p.pts_time));
      t.equal(times.length, 90, `${name}: nginx-rtmp recorded every frame`);
      t.same(
        times
          .slice(1)
          .map((time, i) => Math.round((time - times[i]!) * 1000))
          .filter((step) => step < 30 || step > 37),
        [],
        `${name}: each 33 ms after the one before`,
      );
      const played = await probe(watched);
      const playedTimes = played.video.map((p) => Number(p.pts_time));
      t.ok(
        playedTimes.length >= 60,
        `${name}: ffmpeg took ${playedTimes.length} frames live (of 90: at least 15 either side of the limit)`,
      );
      t.same(
        playedTimes
          .slice(1)
          .map((time, i) => Math.round((time - playedTimes[i]!) * 1000))
          .filter((step) => step < 30 || step > 37),
        [],
        `${name}: and saw them 33 ms apart, across the limit`,
      );
    }
  },
);

t.test(
  'a mixer 12 hours old takes a new input: its thread never held over 50 ms, the input heard within 150 ms',
  async (t) => {
    const supervisor = new FfmpegSupervisor();
    const sockets: Socket[] = [];
    const targets = await Promise.all(
      (['video', 'audio'] as const).map(async (kind, i) => {
        const rtp = createSocket('udp4');
        const rtcp = createSocket('udp4');
        sockets.push(rtp, rtcp);
        await Promise.all([rtp, rtcp].map((s) => new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))));
        return { kind, port: rtp.address().port, rtcpPort: rtcp.address().port, payloadType: 96 + i, ssrc: 1000 + i };
      }),
    );
    t.teardown(() => sockets.forEach((s) => s.close()));
    const output = { close: async () => {} } as unknown as Publisher;
    const mixer = new Mixer(
      mixerSpec(320, 180, 15),
      output,
      targets,
      { supervisor, ffmpegPath: 'ffmpeg', preset: 'ultrafast', keyframeIntervalS: 2, log: pino({ level: 'silent' }) },
      () => {},
      monotonicMs() - 12 * HOUR_MS,
    );
    t.teardown(() => mixer.close('the test ended'));
    await waitFor('the mixer running', () => mixer.pictures > 5, 10_000);

    // The input: a stream whose sound is a loud tone, 20 ms a packet, timed as a publisher's would be.
    let sink: MediaSink | undefined;
    const tone = new Int16Array(960 * 2).map((_, i) =>
      Math.round(16000 * Math.sin((2 * Math.PI * 440 * Math.floor(i / 2)) / 48000)),
    );
    const source: InputSource = {
      attach: (s) => ((sink = s), true),
      detach: () => (sink = undefined),
      audioPcm: () => tone,
    };
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    // The test's own probe of the thread: the gaps between two turns of a 1 ms timer. A garbage
    // collection of the test process (whose heap holds every earlier test's coverage counts) is not
    // the mixer's doing: its time within a gap is taken out (the collector's own entries).
    const gaps: [number, number][] = [];
    const collections: [number, number][] = [];
    const collector = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) collections.push([entry.startTime, entry.startTime + entry.duration]);
    });
    collector.observe({ entryTypes: ['gc'] });
    t.teardown(() => collector.disconnect());
    let last = performance.now();
    const probeTimer = setInterval(() => {
      const at = performance.now();
      gaps.push([last, at]);
      last = at;
    }, 1);
    t.teardown(() => clearInterval(probeTimer));
    const input = mixer.add('late', source);
    const firstAt = monotonicMs();
    const firstPerf = performance.now();
    const sender = setInterval(
      () => sink?.audio({ payload: Buffer.alloc(0), captureMs: monotonicMs() - 20 } as AudioPacket),
      20,
    );
    t.teardown(() => clearInterval(sender));
    sink!.audio({ payload: Buffer.alloc(0), captureMs: firstAt - 20 } as AudioPacket);
    const heardAt = await waitFor(
      'the input heard in the mix',
      () => (input.sound.levelDb > -30 ? monotonicMs() : undefined),
      5000,
      1,
    );
    await sleep(1000);
    loop.disable();
    clearInterval(probeTimer);
    const collected = ([from, to]: [number, number]): number =>
      collections.reduce((sum, [start, end]) => sum + Math.max(0, Math.min(to, end) - Math.max(from, start)), 0);
    const heardCollected = collected([firstPerf, firstPerf + heardAt - firstAt]);
    t.ok(
      heardAt - firstAt - heardCollected <= 150,
      `heard ${Math.round(heardAt - firstAt)} ms after its first packet (the collector ${heardCollected.toFixed(1)} ms of it)`,
    );
    const longest = gaps.reduce((worst, gap) => (gap[1] - gap[0] > worst[1] - worst[0] ? gap : worst), [0, 0]);
    const held = Math.max(...gaps.map((gap) => gap[1] - gap[0] - collected(gap)));
    t.ok(
      held < 50,
      `the thread was never held over 50 ms (${held.toFixed(1)} ms at most; the longest turn ` +
        `${(longest[1] - longest[0]).toFixed(1)} ms, of which the collector ${collected(longest).toFixed(1)} ms; ` +
        `event-loop delay max ${(loop.max / 1e6).toFixed(1)} ms)`,
    );
    t.equal(mixer.closed, false, 'the mixer goes on');
  },
);
