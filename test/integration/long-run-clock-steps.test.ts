import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { pushWhenTaken } from '../helpers/pushes.js';
import { testFixture } from '../helpers/synthetic.js';

// The wall clock the gateway's process sees steps an hour back, then two hours forward (an NTP
// correction, a VM resumed from a pause), while a push and a mixer's push run: nothing at the
// destination shows it. libfaketime moves the process's wall clock alone; its monotonic clock is
// left as it is, as the kernel leaves it when the wall clock is set.

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

t.test(
  'the wall clock stepping back an hour and forward two: pushes of a stream and of a mixer go on evenly',
  async (t) => {
    if (!existsSync(LIBFAKETIME))
      throw new Error(`${LIBFAKETIME} is missing: scripts/install-deps.sh --test installs libfaketime`);
    const dir = await mkdtemp(join(tmpdir(), 'clock-steps-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const offsetFile = join(dir, 'offset');
    await writeFile(offsetFile, '+0');
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    const gateway = await GatewayProcess.start(
      join(dir, 'gateway.log'),
      {
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: offsetFile,
        // The file is read again every second; the monotonic clock is the kernel's.
        FAKETIME_CACHE_DURATION: '1',
        FAKETIME_DONT_RESET: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      },
      ['--import', 'tsx'],
      'kit/server-from-source.ts',
    );
    t.teardown(() => gateway.stop());
    const publisher = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'cam');
    t.teardown(() => publisher.stop());
    const started = await gateway.request('POST', '/rest-api/mixer/startup', {
      uri: 'mixer://show',
      layout: 'grid',
      width: 640,
      height: 360,
    });
    t.equal(started.status, 200, JSON.stringify(started.body));
    t.equal(
      (await gateway.request('POST', '/rest-api/mixer/add', { uri: 'mixer://show', remoteStreamName: 'cam' })).status,
      200,
    );

    const media = new Map<string, RtmpMediaMessage[]>([
      ['cam', []],
      ['show', []],
    ]);
    receiver.on('media', (m) => !m.sequenceHeader && media.get(m.publish.streamName)?.push(m));
    for (const stream of media.keys())
      t.equal((await pushWhenTaken(gateway, stream, `${receiver.url()}/${stream}`, 500)).status, 200);
    const seconds = (stream: string): number => media.get(stream)!.filter((m) => m.kind === 'video').length / 30;
    await waitFor('2 s of both at the destination', () => seconds('cam') >= 2 && seconds('show') >= 2, 30_000);

    const steps: [string, string][] = [
      ['-3600', 'an hour back'],
      ['+3600', 'two hours forward'],
    ];
    for (const [offset, what] of steps) {
      const from = seconds('show');
      await writeFile(offsetFile, offset);
      // The process reads the file again within a second: 3 s of both after that.
      await waitFor(
        `3 s of both after the step ${what}`,
        () => seconds('show') >= from + 4 && seconds('cam') >= from + 4,
        30_000,
      );
      // The gateway's wall clock did step: the date of a mixer started now says so.
      const probe = await gateway.request('POST', '/rest-api/mixer/startup', {
        uri: 'mixer://probe',
        width: 160,
        height: 120,
      });
      const seen = await gateway.request('POST', '/rest-api/mixer/find_all', {});
      const dated = (seen.body as { uri: string; createdAt: string }[]).find((m) => m.uri === 'mixer://probe');
      t.equal(probe.status, 200);
      const offsetS = (Date.parse(dated!.createdAt) - Date.now()) / 1000;
      t.ok(
        Math.abs(offsetS - Number(offset)) < 30,
        `the gateway's wall clock stood ${Math.round(offsetS)} s off this one's`,
      );
      t.equal((await gateway.request('POST', '/rest-api/mixer/terminate', { uri: 'mixer://probe' })).status, 200);
    }
    await sleep(1000);
    const listed = (await gateway.request('POST', '/rest-api/push/find_all')).body as { state: string }[];
    t.same(
      listed.map((p) => p.state),
      ['running', 'running'],
      'both pushes running throughout',
    );

    for (const [stream, messages] of media) {
      for (const kind of ['video', 'audio'] as const) {
        const of = messages.filter((m) => m.kind === kind);
        const timeSteps = of.slice(1).map((m, i) => m.timestamp - of[i]!.timestamp);
        const frameMs = kind === 'video' ? 1000 / 30 : 1024 / 48;
        t.same(
          timeSteps.filter((step) => step <= 0 || step > 2 * frameMs + 5),
          [],
          `${stream}, ${kind}: ${of.length} messages, each timestamp after the one before by about a frame (none back, none skipping ahead)`,
        );
        const arrivalGaps = of.slice(1).map((m, i) => m.arrivalMs - of[i]!.arrivalMs);
        const longest = Math.max(...arrivalGaps);
        t.ok(
          longest < 500,
          `${stream}, ${kind}: no stall at the destination (longest wait between two ${Math.round(longest)} ms)`,
        );
        // From 2 s in: a push starts with what its stream cached since the last keyframe (up to a
        // keyframe interval of media at once), which says nothing of the pace after.
        const from = of.find((m) => m.arrivalMs >= of[0]!.arrivalMs + 2000)!;
        const span = (of.at(-1)!.timestamp - from.timestamp) / (of.at(-1)!.arrivalMs - from.arrivalMs);
        t.ok(
          Math.abs(span - 1) < 0.05,
          `${stream}, ${kind}: its timeline moved at the pace of real time (${span.toFixed(3)})`,
        );
      }
    }
  },
);
