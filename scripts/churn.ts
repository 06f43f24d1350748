/**
 * The churn run: what days of use leave behind, found in minutes. Cycles of publish → push →
 * terminate → unpublish, each with a new stream name and a new client address (its ICE from an
 * address of 127/8 of its own, its HTTP requests from one of its own through X-Forwarded-For, the
 * gateway trusting loopback as its proxy); every 10th also records, pushes over SRT, has a WHEP
 * viewer and is a mixer's input. After the first 100 cycles and at the end, with nothing live, it
 * reads the gateway's heap after a full GC (every thread, over the inspector), RSS, file
 * descriptors, child processes, UDP sockets, timers, /metrics series and every tracked map
 * (`gateway_tracked_entries`), prints each figure beside its start and fails on one more than 5 %
 * above it. The heap and RSS are judged without what only the program's size bounds (V8's compiled
 * code, which grows as more functions get hot enough to optimise; the pages of the binaries, read in
 * as more of them runs), both printed beside them: a leak grows the objects and memory kept.
 *
 *   npm run churn -- [--cycles 5000] [--lanes 6] [--snapshots]
 *
 * With --snapshots it also writes each thread's heap snapshot at each taking (.bench/churn-heap-*)
 * and prints, for each thread, the kinds of object that grew most from the start, and from the
 * first quarter, to the end: where a heap that grew goes. Taking a snapshot leaves V8 an id for
 * every object, outside the heap: a run with snapshots is for finding, not for its RSS.
 *
 * Everything runs on loopback and stops by itself; every process it started is stopped by PID.
 */
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { loadFixture, type Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { heapGroups, heapGrowth } from '../kit/heap-snapshot.js';
import { now, sleep, stopAllProcesses, waitFor } from '../kit/processes.js';
import { RtmpReceiver } from '../kit/rtmp-receiver.js';
import { freePort } from '../kit/rtmp-server.js';
import { SrtListener } from '../kit/srt-listener.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { WhepViewer } from '../kit/whep-viewer.js';

const { values: args } = parseArgs({
  options: {
    cycles: { type: 'string', default: '5000' },
    lanes: { type: 'string', default: '6' },
    snapshots: { type: 'boolean', default: false },
  },
});
const cycles = Number(args.cycles);
const lanes = Number(args.lanes);
if (!(cycles >= 200) || !(lanes >= 1 && lanes <= 32))
  throw new Error('usage: npm run churn -- [--cycles N (>= 200)] [--lanes N (1 to 32)]');
/** Cycles before the figures are first taken: caches warm, code compiled, pools at their size. */
const WARM_CYCLES = 100;
/** How far above its start a figure may end (share). */
const MARGIN = 0.05;
/**
 * Figures shown to tell where a miss comes from, not judged themselves: each thread's share of
 * the heap (a small thread's JIT warming up is more than 5 % of it) and each metric's series.
 */
const INFO = '· ';

/** A cycle's client: the address its ICE gathers on, and the one its HTTP requests come from. */
function clientOf(cycle: number): { ice: string; http: string } {
  return {
    ice: `127.${2 + (cycle >> 14)}.${(cycle >> 7) & 127}.${1 + (cycle & 127)}`,
    http: `198.18.${(cycle >> 8) & 255}.${cycle & 255}`,
  };
}

/** The gateway's REST API, as the client `from`. */
async function api(
  gateway: GatewayProcess,
  path: string,
  body: unknown,
  from: string,
): Promise<{ status: number; body: any }> {
  const response = await fetch(gateway.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

interface Lab {
  gateway: GatewayProcess;
  fixture: Fixture;
  rtmp: RtmpReceiver;
  /** The SRT listener takes one caller at a time: a cycle that pushes over SRT holds it. */
  srt: SrtListener;
  srtFree: Promise<void>;
}

/** Waits for the SRT listener, and has it listen afresh (it ends with its caller); resolves with the function that frees it. */
async function takeSrt(lab: Lab): Promise<() => void> {
  const before = lab.srtFree;
  let free!: () => void;
  lab.srtFree = new Promise<void>((resolve) => (free = resolve));
  await before;
  await lab.srt.restart();
  const port = lab.srt.port.toString(16).toUpperCase().padStart(4, '0');
  await waitFor(
    'the SRT listener bound',
    async () => (await readFile('/proc/net/udp', 'utf8')).includes(`:${port} `),
    10_000,
    20,
  );
  return free;
}

/** One cycle: publish, push (and on every 10th the rest), terminate, unpublish. */
async function cycle(lab: Lab, n: number): Promise<void> {
  const { gateway } = lab;
  const name = `churn${n}`;
  const client = clientOf(n);
  let location: string | undefined;
  const publisher = await SyntheticPublisher.publish(lab.fixture, gateway.baseUrl, name, {
    localAddress: client.ice,
    exchange: async (offer) => {
      const response = await fetch(`${gateway.baseUrl}/whip/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', 'x-forwarded-for': client.http },
        body: offer,
      });
      const answer = await response.text();
      if (response.status !== 201) throw new Error(`WHIP publish of ${name} answered ${response.status}: ${answer}`);
      location = response.headers.get('location') ?? undefined;
      return answer;
    },
  });
  const extra: (() => Promise<void>)[] = [];
  const freeSrt = n % 10 === 0 ? await takeSrt(lab) : undefined;
  try {
    const destinations = [`${lab.rtmp.url()}/${name}`];
    if (freeSrt) destinations.push('record://', lab.srt.url());
    const ids: string[] = [];
    for (const rtmpUrl of destinations) {
      const reply = await waitFor(
        `a push of ${name} to ${rtmpUrl.split(':')[0]}`,
        async () => {
          const started = await api(
            gateway,
            '/rest-api/push/startup',
            { streamName: name, rtmpUrl, rtmpTransponderFullUrl: true },
            client.http,
          );
          if (started.status === 200) return started;
          // Refused for load (503): asked again.
          if (started.status !== 503) throw new Error(`${started.status} ${JSON.stringify(started.body)}`);
          return undefined;
        },
        20_000,
        100,
      );
      ids.push(reply.body.mediaSessionId as string);
    }
    if (n % 10 === 0) {
      const viewer = await WhepViewer.watch(gateway.baseUrl, name, { localAddress: client.ice });
      extra.push(() => viewer.close());
      const added = await api(
        gateway,
        '/rest-api/mixer/add',
        { uri: 'mixer://churn', remoteStreamName: name },
        client.http,
      );
      if (added.status !== 200) throw new Error(`mixer add: ${JSON.stringify(added.body)}`);
      extra.push(
        async () =>
          void (await api(
            gateway,
            '/rest-api/mixer/remove',
            { uri: 'mixer://churn', remoteStreamName: name },
            client.http,
          )),
      );
      await waitFor(`the viewer of ${name} receiving`, () => viewer.received.video > 0, 10_000);
    }
    for (const id of ids) {
      const ended = await api(gateway, '/rest-api/push/terminate', { mediaSessionId: id }, client.http);
      if (ended.status !== 200) throw new Error(`terminate: ${JSON.stringify(ended.body)}`);
    }
  } finally {
    freeSrt?.();
    for (const end of extra.reverse()) await end();
    if (location)
      await fetch(gateway.baseUrl + location, { method: 'DELETE', headers: { 'x-forwarded-for': client.http } }).then(
        (r) => r.body?.cancel(),
      );
    await publisher.stop();
  }
}

/** Runs cycles `from` to `to` (exclusive) over the lanes. */
async function run(lab: Lab, from: number, to: number, progress: (done: number) => void): Promise<void> {
  let next = from;
  let done = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < to) {
        const n = next++;
        await cycle(lab, n);
        progress(++done);
      }
    }),
  );
}

/**
 * The inspector of the gateway's process: a full GC, then each thread's heap and timers; and, with
 * `snapshotPath`, each thread's heap snapshot written to `snapshotPath(thread)`.
 */
async function inspect(
  url: string,
  snapshotPath?: (thread: number) => string,
): Promise<{ heapsMb: number[]; codeMb: number; spacesMb: Record<string, number>; timers: number }> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let id = 0;
  const pending = new Map<number, (result: any) => void>();
  const workers: string[] = [];
  const inWorker = new Map<number, (result: any) => void>();
  // The snapshot being taken: its chunks, from whichever thread takes it (one at a time).
  let chunks: string[] = [];
  ws.on('message', (data) => {
    const message = JSON.parse((data as Buffer).toString());
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
    if (message.method === 'NodeWorker.attachedToWorker') workers.push(message.params.sessionId);
    if (message.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(message.params.chunk);
    if (message.method === 'NodeWorker.receivedMessageFromWorker') {
      const inner = JSON.parse(message.params.message);
      if (inner.id !== undefined) inWorker.get(inner.id)?.(inner.result);
      if (inner.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(inner.params.chunk);
    }
  });
  const call = (method: string, params: object = {}): Promise<any> =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  const callIn = (sessionId: string, method: string, params: object = {}): Promise<any> =>
    new Promise((resolve) => {
      const inner = ++id;
      inWorker.set(inner, resolve);
      void call('NodeWorker.sendMessageToWorker', {
        sessionId,
        message: JSON.stringify({ id: inner, method, params }),
      });
    });
  const expression = "process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length";
  await call('NodeWorker.enable', { waitForDebuggerOnStart: false });
  await sleep(500);
  // V8's own figures of a thread (`require` is the inspector's): its heap by space, used and resident; what it took
  // from malloc and what objects hold outside it (buffers); its compiled code (machine code and bytecode, with metadata).
  const v8Figures = `JSON.stringify((({ getHeapSpaceStatistics, getHeapStatistics, getHeapCodeStatistics }) => ({
    spaces: getHeapSpaceStatistics().map((space) => [space.space_name, space.space_used_size, space.physical_space_size]),
    malloced: getHeapStatistics().malloced_memory,
    external: getHeapStatistics().external_memory,
    code: getHeapCodeStatistics().code_and_metadata_size + getHeapCodeStatistics().bytecode_and_metadata_size,
  }))(require('node:v8')))`;
  const heapsMb: number[] = [];
  const spacesMb: Record<string, number> = {};
  let timers = 0;
  let codeMb = 0;
  const add = (name: string, bytes: number): void => void (spacesMb[name] = (spacesMb[name] ?? 0) + bytes / 2 ** 20);
  const threads: ((method: string, params?: object) => Promise<any>)[] = [
    call,
    ...workers.map((session) => (method: string, params?: object) => callIn(session, method, params)),
  ];
  for (const [thread, send] of threads.entries()) {
    await send('HeapProfiler.collectGarbage');
    await send('HeapProfiler.collectGarbage');
    heapsMb.push(((await send('Runtime.getHeapUsage')) as { usedSize: number }).usedSize / 2 ** 20);
    timers += Number(((await send('Runtime.evaluate', { expression })) as { result: { value: number } }).result.value);
    const evaluated = (await send('Runtime.evaluate', { expression: v8Figures, includeCommandLineAPI: true })) as {
      result: { value: string };
    };
    const v8 = JSON.parse(evaluated.result.value) as {
      spaces: [string, number, number][];
      malloced: number;
      external: number;
      code: number;
    };
    for (const [space, used, resident] of v8.spaces.filter(([, , resident]) => resident > 0)) {
      add(`${space} used`, used);
      add(`${space} resident`, resident);
    }
    add('malloced by V8', v8.malloced);
    add('external (buffers)', v8.external);
    codeMb += v8.code / 2 ** 20;
    if (snapshotPath) {
      chunks = [];
      await send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
      await writeFile(snapshotPath(thread), chunks.join(''));
      chunks = [];
    }
  }
  ws.close();
  return { heapsMb, codeMb, spacesMb, timers };
}

/** Descriptors of `pid`, and how many of them are UDP sockets. */
async function descriptors(pid: number): Promise<{ fds: number; udp: number }> {
  const udpInodes = new Set<string>();
  for (const table of ['udp', 'udp6']) {
    const text = await readFile(`/proc/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) udpInodes.add(inode);
    }
  }
  const names = await readdir(`/proc/${pid}/fd`);
  let udp = 0;
  for (const fd of names) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode && udpInodes.has(inode)) udp++;
  }
  return { fds: names.length, udp };
}

/** Resident memory of `pid` (MB): all of it, its anonymous pages (the heaps) and its file pages (code and libraries, read in as first run). */
async function residentMb(pid: number): Promise<{ rss: number; anon: number; file: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

type Figures = Record<string, number>;

/** Every figure, once nothing is live: no publisher, no push, no ffmpeg. */
async function figures(
  gateway: GatewayProcess,
  inspector: string,
  snapshotPath?: (thread: number) => string,
): Promise<Figures> {
  // The mixer's stream and its encoder (its one ffmpeg) stay; its inputs' decoders are gone.
  const others = async (): Promise<unknown[]> => {
    const listed = (await gateway.request('POST', '/rest-api/stream/find_all')).body as
      { name?: string; streamName?: string }[] | undefined;
    return Array.isArray(listed) ? listed.filter((s) => (s.name ?? s.streamName) !== 'churn') : [];
  };
  await waitFor(
    'nothing live',
    async () => (await others()).length === 0 && (await gateway.ffmpegPids()).length <= 1,
    60_000,
    200,
  );
  await sleep(2000);
  const workers = await gateway.mediaWorkerPids();
  const { heapsMb, codeMb, spacesMb, timers } = await inspect(inspector, snapshotPath);
  const heapMb = heapsMb.reduce((a, b) => a + b, 0);
  const own = [gateway.pid, ...workers];
  const resident = await Promise.all(own.map(residentMb));
  const fds = await Promise.all(own.map(descriptors));
  const metrics = await (await fetch(`${gateway.baseUrl}/metrics`)).text();
  const series = metrics.split('\n').filter((line) => line && !line.startsWith('#'));
  const names: Figures = {};
  for (const line of series) {
    const name = line.replace(/ [^ ]+$/, '').replace(/\{.*\}/, '');
    names[`/metrics series ${name}`] = (names[`/metrics series ${name}`] ?? 0) + 1;
  }
  const tracked: Figures = {};
  for (const line of series) {
    const match = /^gateway_tracked_entries\{worker="([^"]+)",map="([^"]+)"\} (\d+)/.exec(line);
    if (match) tracked[`map ${match[2]} (${match[1]})`] = Number(match[3]);
  }
  return {
    // Compiled code grows as more of the program gets hot enough for V8 to optimise, up to the program's size: judged
    // apart from the objects the gateway keeps, which are what a leak would grow.
    [`heap after a full GC, ${heapsMb.length} threads, compiled code apart (MB)`]: heapMb - codeMb,
    [`${INFO}heap after a full GC, ${heapsMb.length} threads, compiled code included (MB)`]: heapMb,
    [`${INFO}heap after a full GC, compiled code and bytecode, every thread (MB)`]: codeMb,
    ...Object.fromEntries(
      heapsMb.map((mb, i) => [`${INFO}heap after a full GC, ${i === 0 ? 'main thread' : `thread ${i}`} (MB)`, mb]),
    ),
    ...Object.fromEntries(
      Object.entries(spacesMb).map(([space, mb]) => [`${INFO}heap after a full GC, ${space}, every thread (MB)`, mb]),
    ),
    // RSS less what only the program's size bounds: the pages of its files (the binaries, read in as more of them
    // runs) and V8's compiled code.
    'RSS, gateway and media workers, compiled code and file pages apart (MB)':
      resident.reduce((sum, r) => sum + r.anon, 0) -
      (spacesMb['code_space resident'] ?? 0) -
      (spacesMb['code_large_object_space resident'] ?? 0),
    [`${INFO}RSS, gateway and media workers (MB)`]: resident.reduce((sum, r) => sum + r.rss, 0),
    ...Object.fromEntries(
      resident.flatMap((r, i) => {
        const who = i === 0 ? 'gateway' : `media worker ${i}`;
        return [
          [`${INFO}RSS, ${who}, anonymous (MB)`, r.anon],
          [`${INFO}RSS, ${who}, files (MB)`, r.file],
        ];
      }),
    ),
    'file descriptors': fds.reduce((sum, f) => sum + f.fds, 0),
    'UDP sockets': fds.reduce((sum, f) => sum + f.udp, 0),
    'child processes': workers.length + (await gateway.ffmpegPids()).length,
    timers,
    // Node's own metrics gain a series per kind of GC as each first runs (four at most).
    "/metrics series of the gateway's own (gateway_*)": series.filter((line) => line.startsWith('gateway_')).length,
    [`${INFO}/metrics series, Node's included`]: series.length,
    ...Object.fromEntries(Object.entries(names).map(([name, count]) => [`${INFO}${name}`, count])),
    ...tracked,
  };
}

/** What grew in each thread's heap from each of `ats` but the last to the last: the groups that grew most, in bytes and in count. */
async function printHeapGrowth(work: string, ats: number[]): Promise<void> {
  const end = ats.at(-1)!;
  const threads = (await readdir(work)).filter((name) => name.startsWith(`churn-heap-${end}-`)).length;
  for (let thread = 0; thread < threads; thread++) {
    const after = await heapGroups(join(work, `churn-heap-${end}-${thread}.heapsnapshot`));
    for (const at of ats.slice(0, -1)) {
      console.log(
        `\n  ${thread === 0 ? 'main thread' : `thread ${thread}`}, what grew from ${at} cycles to ${end} (KB, count):`,
      );
      const before = await heapGroups(join(work, `churn-heap-${at}-${thread}.heapsnapshot`));
      for (const group of heapGrowth(before, after, 15))
        console.log(
          `    ${(group.bytes / 1024).toFixed(1).padStart(9)} ${String(group.count).padStart(7)}  ${group.key}`,
        );
    }
  }
}

async function main(): Promise<void> {
  const work = resolve('.bench');
  const fixture = loadFixture(join(work, 'fixture'));
  const records = await mkdtemp(join(tmpdir(), 'churn-records-'));
  const inspectPort = await freePort();
  const rtmp = await RtmpReceiver.start();
  const srt = await SrtListener.start();
  const gateway = await GatewayProcess.start(
    join(work, 'churn-gateway.log'),
    {
      GATEWAY_TRUST_PROXY: '["127.0.0.0/8"]',
      GATEWAY_RECORD_DIR: records,
      GATEWAY_RECORD_MIN_FREE_MB: '1',
      GATEWAY_LIMIT_VIEWERS: '1000',
      GATEWAY_LIMIT_TRANSPONDERS: '1000',
    },
    ['--import', 'tsx', `--inspect=127.0.0.1:${inspectPort}`],
    'kit/server-from-source.ts',
  );
  try {
    const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const inspector = list[0]!.webSocketDebuggerUrl;
    const mixer = await gateway.request('POST', '/rest-api/mixer/startup', {
      uri: 'mixer://churn',
      width: 320,
      height: 180,
    });
    if (mixer.status !== 200) throw new Error(`mixer: ${JSON.stringify(mixer.body)}`);
    const lab: Lab = { gateway, fixture, rtmp, srt, srtFree: Promise.resolve() };
    const started = now();
    let reported = 0;
    const progress = (done: number): void => {
      if (done - reported < 250) return;
      reported = done;
      console.log(`  ${done} cycles, ${((now() - started) / 1000).toFixed(0)} s`);
    };
    console.log(
      `Churn: ${cycles} cycles of publish → push → terminate → unpublish over ${lanes} lanes (every 10th: recording, SRT, WHEP viewer, mixer input)`,
    );
    // With --snapshots, each thread's heap at each figures' taking: .bench/churn-heap-<cycles>-<thread>.heapsnapshot.
    const snapshotAt = (at: number) =>
      args.snapshots ? (thread: number) => join(work, `churn-heap-${at}-${thread}.heapsnapshot`) : undefined;
    await run(lab, 0, WARM_CYCLES, progress);
    const before = await figures(gateway, inspector, snapshotAt(WARM_CYCLES));
    // Figures at each quarter too: where a figure that grew levels off, or does not.
    const quarters: { at: number; figures: Figures }[] = [];
    for (let quarter = 1; quarter <= 4; quarter++) {
      const [from, to] = [
        WARM_CYCLES + Math.round(((cycles - WARM_CYCLES) * (quarter - 1)) / 4),
        WARM_CYCLES + Math.round(((cycles - WARM_CYCLES) * quarter) / 4),
      ];
      await run(lab, from, to, (done) => progress(done + from));
      quarters.push({ at: to, figures: await figures(gateway, inspector, snapshotAt(to)) });
    }
    const tookS = (now() - started) / 1000;
    const after = quarters.at(-1)!.figures;
    console.log(
      `\n${cycles} cycles in ${(tookS / 60).toFixed(1)} min (${((tookS * 1000) / cycles).toFixed(0)} ms a cycle, figures taken included)\n`,
    );
    for (const name of Object.keys(before).filter((n) => /heap|RSS/.test(n) && !/series/.test(n))) {
      console.log(
        `  ${name.replace(INFO, '')}: ${[{ at: WARM_CYCLES, figures: before }, ...quarters].map((q) => `${(q.figures[name] ?? 0).toFixed(1)} at ${q.at}`).join(', ')}`,
      );
    }
    console.log('');
    const misses: string[] = [];
    for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const [start, end] = [before[name] ?? 0, after[name] ?? 0];
      const info = name.startsWith(INFO);
      const ok = info || end <= start * (1 + MARGIN);
      if (!ok) misses.push(name);
      console.log(
        `  ${info ? '    ' : ok ? 'ok  ' : 'MISS'} ${name}: ${start.toFixed(start % 1 ? 1 : 0)} after ${WARM_CYCLES} cycles, ${end.toFixed(end % 1 ? 1 : 0)} after ${cycles}`,
      );
    }
    console.log(
      `\n${misses.length === 0 ? 'every figure back within 5 % of its start' : `grew: ${misses.join('; ')}`}`,
    );
    if (args.snapshots) await printHeapGrowth(work, [WARM_CYCLES, quarters[0]!.at, cycles]);
    process.exitCode = misses.length === 0 ? 0 : 1;
  } finally {
    await gateway.stop();
    await rtmp.close();
    await srt.close();
    await stopAllProcesses();
    await rm(records, { recursive: true, force: true });
  }
}

await main();
