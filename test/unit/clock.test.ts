import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { monotonicMs } from '../../src/core/clock.js';
import { checkEvery } from '../../src/core/tick.js';

const SRC = join(import.meta.dirname, '../../src');

/**
 * The files that read the wall clock, each for a date a person reads or a time another machine
 * compares: nothing that times media. A file that starts reading it must be added here, with why.
 */
const WALL_CLOCK_READERS: Record<string, string> = {
  'core/clock.ts': 'where it is read',
  'mixers/mixer.ts': "createdAt: the mixer's start as a date in listings, and how a restarted one is told apart",
  'publishers/publisher.ts': 'createdAt and publishingSince: dates in listings',
  'pushes/push.ts': 'createdAt: a date in listings and the push log',
  'recordings/library.ts': "retention: a file's age from its modification date",
  'recordings/uploads.ts': "an upload's date, as find_all lists it",
  'ingest/mediasoup/offer.ts':
    "the SDP's session id, a publisher's answer's and a viewer's (RFC 8866 suggests an NTP time)",
  'webhooks/dispatcher.ts': "the signature's timestamp, which the receiver compares with its own clock",
  'webhooks/signature.ts': "a signature's timestamp against this machine's clock",
  'security/publish-auth.ts': "a token's expiry (exp, nbf), set by another machine's clock",
  'cluster/node-calls.ts': "a sealed call's time, checked by another node's clock",
  'cluster/nodes.ts': "the heartbeat's time, read by other nodes",
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

t.test(
  'no media timing reads the wall clock: Date.now only in clock.ts, wallClockMs only where a date is meant',
  async (t) => {
    const files = sources(SRC);
    t.ok(files.length > 100, 'the sources were found');
    const dateNow = files.filter((file) => /\bDate\.now\b/.test(readFileSync(join(SRC, file), 'utf8')));
    t.same(dateNow, ['core/clock.ts'], 'Date.now is read in core/clock.ts alone');
    const readers = files.filter((file) => /\bwallClockMs\b/.test(readFileSync(join(SRC, file), 'utf8'))).sort();
    t.same(
      readers,
      Object.keys(WALL_CLOCK_READERS).sort(),
      'the files that read the wall clock are the ones listed, each with its reason',
    );
    for (const folder of ['media/', 'audio/', 'pipeline/', 'links/', 'rtmp/'])
      t.same(
        readers.filter((file) => file.startsWith(folder)),
        [],
        `nothing in ${folder} reads the wall clock`,
      );
  },
);

t.test(
  'the monotonic clock is one clock for every thread: a frame timed in a worker keeps its time in another',
  async (t) => {
    // A worker's own performance.now() counts from its start; the clock module's offset makes every thread agree.
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
    parentPort.once('message', async () => {
      (await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();
      const { monotonicMs } = await import(${JSON.stringify(pathToFileURL(join(SRC, 'core/clock.ts')).href)});
      parentPort.postMessage([performance.now(), monotonicMs()]);
    });`,
      { eval: true },
    );
    await new Promise((resolve) => worker.once('online', resolve));
    const before = monotonicMs();
    const [own, theirs] = await new Promise<[number, number]>((resolve) => {
      worker.once('message', resolve);
      worker.postMessage('now');
    });
    const after = monotonicMs();
    await worker.terminate();
    t.ok(own < before - 1000, "the worker's performance.now() is on a clock of its own");
    t.ok(
      theirs >= before - 1 && theirs <= after + 1,
      `monotonicMs in the worker (${theirs.toFixed(1)}) lies between this thread's readings around it`,
    );
  },
);

t.test(
  'a periodic check says when it came late: the thread was starved, and what its sockets hold is still unread',
  async (t) => {
    const calls: boolean[] = [];
    t.teardown(checkEvery(100, (_now, onTime) => calls.push(onTime)));
    // On time at least once (a busy machine may make some late), then the thread held for 1.5 s.
    while (!calls.includes(true)) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = monotonicMs() + 1500;
        while (monotonicMs() < until); // starved
        calls.length = 0;
        resolve();
      }),
    );
    while (calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    t.equal(calls[0], false, 'the call after the hold was late');
  },
);
