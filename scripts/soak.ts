/**
 * The soak: publishers and their pushes on a small cluster (or one gateway) for `--minutes`, with
 * trouble every `--chaos-s` seconds, taken in turn: the destination restarted, the destination
 * stopped for 10 s, a node killed with SIGKILL, Redis restarted, a node drained, a push terminated
 * and started again, audio commands. After each, it waits for every push to be back at the
 * destination and says whether it was, and how long it took. Every 10 s it samples each node's
 * RSS, heap, file descriptors and processes with the streams it serves; at the end it prints each
 * resource's slope per hour over each node's longest-lived process, with the node's streams held
 * constant (streams move between nodes, and each costs memory, descriptors and an ffmpeg: that is
 * load, not a leak), the event-loop delay per hour (the worst thread's p99 of each second), the
 * frames lost, and where the sound stands against the pictures at a destination of its own (an
 * RTMP receiver that times every message) at the start and at the end; it writes .bench/soak.json.
 *
 *   npm run soak -- --minutes 60 [--nodes 3] [--streams 4] [--chaos-s 180]
 *
 * Everything runs on loopback and stops by itself; every process it started is stopped by PID.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { now, sleep, stopAllProcesses, waitFor } from '../kit/processes.js';
import { percentile, slopeAtLoad } from '../kit/stats.js';
import { RedisServer } from '../kit/redis-server.js';
import { avOffsetMs, RtmpReceiver, type RtmpMediaMessage } from '../kit/rtmp-receiver.js';
import { freePorts, NginxRtmp } from '../kit/rtmp-server.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { TcpBalancer } from '../kit/tcp-balancer.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '3' },
    streams: { type: 'string', default: '4' },
    'chaos-s': { type: 'string', default: '180' },
  },
});
const minutes = Number(args.minutes);
const nodeCount = Number(args.nodes);
const streamCount = Number(args.streams);
const chaosMs = Number(args['chaos-s']) * 1000;
if (!(minutes > 0) || !(nodeCount >= 1) || !(streamCount >= 1) || !(chaosMs >= 10_000)) {
  throw new Error(
    'usage: npm run soak -- --minutes N (> 0) [--nodes N (>= 1)] [--streams N (>= 1)] [--chaos-s S (>= 10)]',
  );
}
const WORK = resolve('.bench');
const SECRET = 'soak-cluster-secret-0123456789';

interface Sample {
  at: number;
  node: string;
  pid: number;
  rssMb: number;
  heapMb: number;
  fds: number;
  processes: number;
  /** Streams this node serves (publishers plus pushes: one push a stream here). */
  streams: number;
  /** The worst event-loop delay p99 of the last second among the node's threads (ms). */
  loopP99Ms: number;
}
interface Trouble {
  at: number;
  kind: string;
  back: boolean;
  backMs: number;
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kb / 1024;
}

/** The frame counters summed at the end: video frames sent, and those lost, dropped or discarded on the way. */
const FRAME_COUNTERS = [
  'gateway_push_frames_total',
  'gateway_push_frames_lost_total',
  'gateway_push_frames_dropped_total',
  'gateway_push_frames_discarded_total',
];

/**
 * The last value seen of each frame counter's series, by process: a push (a series) ends and a
 * node restarts with its counters at 0, so the figures are the sum of every series' last value.
 */
const frameSeries = new Map<string, number>();
function readFrameCounters(pid: number, metrics: string): void {
  for (const match of metrics.matchAll(/^(gateway_push_frames_\w+)(\{[^}]*\})? (\S+)$/gm)) {
    if (FRAME_COUNTERS.includes(match[1]!)) frameSeries.set(`${pid} ${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
}
function frameTotals(): Record<string, number> {
  const totals = Object.fromEntries(FRAME_COUNTERS.map((name) => [name, 0]));
  for (const [key, value] of frameSeries) totals[key.split(' ')[1]!.split('{')[0]!]! += value;
  return totals;
}

/** The worst event-loop delay p99 (ms) of the last second among the main thread and the workers. */
function loopP99Ms(metrics: string): number {
  const main = Number(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(metrics)?.[1] ?? 0) * 1000;
  const workers = [...metrics.matchAll(/^gateway_load\{[^}]*measure="event_loop_delay_p99_ms"[^}]*\} (\S+)$/gm)].map(
    (m) => Number(m[1]),
  );
  return Math.max(main, ...workers);
}

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const fixture = loadFixture(join(WORK, 'fixture'));
  const clustered = nodeCount > 1;
  const redis = clustered ? await RedisServer.start() : undefined;
  const nginx = await NginxRtmp.start();
  const ports = new Map<string, number>();
  const nodes = new Map<string, GatewayProcess>();
  const dataDir = join(WORK, 'soak-data');
  const ids = Array.from({ length: nodeCount }, (_, i) => `s${i + 1}`);
  const chosen = await freePorts(ids.length);
  ids.forEach((id, i) => ports.set(id, chosen[i]!));
  // Each start of a node logs to a file of its own, at info: what a trouble did stays to be read.
  const starts = new Map<string, number>();
  const startNode = async (id: string): Promise<void> => {
    const port = ports.get(id)!;
    const env: Record<string, string> = {
      GATEWAY_HTTP_PORT: String(port),
      GATEWAY_RUN_DIR: WORK,
      GATEWAY_DATA_DIR: dataDir,
      GATEWAY_LOG_LEVEL: 'info',
    };
    if (redis)
      env.GATEWAY_CLUSTER = JSON.stringify({
        redis_url: redis.url,
        node_id: id,
        advertise_url: `http://127.0.0.1:${port}`,
        secret: SECRET,
        drain_timeout_ms: 10_000,
      });
    const start = (starts.get(id) ?? 0) + 1;
    starts.set(id, start);
    nodes.set(id, await GatewayProcess.start(join(WORK, `soak-${id}-${start}.log`), env));
  };
  await Promise.all(ids.map(startNode));
  const balancer = await TcpBalancer.start(ids.map((id) => ({ host: '127.0.0.1', port: ports.get(id)! })));
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const response = await fetch(balancer.url + path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    }).catch(() => undefined);
    if (!response) return { status: 0, body: undefined };
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };

  const names = Array.from({ length: streamCount }, (_, i) => `soak${i}`);
  const publishers = new Map<string, SyntheticPublisher>();
  /** Keeps each stream published, as an encoder does: published again when its gateway lost it. */
  const keepPublished = async (): Promise<void> => {
    const listed = await api('POST', '/rest-api/stream/find_all');
    const live = new Set(listed.status === 200 ? (listed.body as { name: string }[]).map((s) => s.name) : []);
    for (const name of names) {
      if (live.has(name)) continue;
      await publishers
        .get(name)
        ?.vanish()
        .catch(() => {});
      publishers.delete(name);
      await SyntheticPublisher.publish(fixture, balancer.url, name).then(
        (p) => void publishers.set(name, p),
        () => {},
      );
    }
  };
  await waitFor(
    'every stream published',
    async () => (await keepPublished(), publishers.size === names.length),
    60_000,
    500,
  );
  for (const name of names) {
    const res = await api('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
    if (res.status !== 200) throw new Error(`startup of ${name} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  // The first stream goes to a destination of its own too, which times every message: where the
  // sound stands against the pictures there, over the last 20 s of one connection.
  const watched = names[0]!;
  const receiver = await RtmpReceiver.start();
  const watchedUrl = `${receiver.url()}/${watched}`;
  const startWatching = async (): Promise<void> => {
    const res = await api('POST', '/rest-api/push/startup', {
      streamName: watched,
      rtmpUrl: watchedUrl,
      rtmpTransponderFullUrl: true,
    });
    if (res.status !== 200) console.log(`  startup of ${watched} to the receiver answered ${res.status}`);
  };
  /** The current connection's messages of the last minute, without their bodies. */
  let heard: RtmpMediaMessage[] = [];
  receiver.on('media', (m) => {
    if (m.sequenceHeader) return;
    if (heard.length && heard.at(-1)!.publish.connection !== m.publish.connection) heard = [];
    heard.push({ ...m, data: Buffer.alloc(0) });
    if (heard[0]!.arrivalMs < m.arrivalMs - 60_000) heard = heard.filter((h) => h.arrivalMs >= m.arrivalMs - 60_000);
  });
  const receiving = (): boolean => heard.length > 0 && now() - heard.at(-1)!.arrivalMs < 2000;
  /** The A/V offset over the last 20 s of one connection, waiting up to a minute for that much. */
  const avOffset = async (): Promise<number> => {
    await waitFor(
      '20 s of one connection at the receiver',
      () => heard.length > 0 && heard[0]!.arrivalMs <= now() - 20_000 && receiving(),
      60_000,
      500,
    ).catch(() => {});
    return avOffsetMs(heard, now() - 20_000, Infinity);
  };
  await startWatching();

  /** The streams whose push is not running, or not at the destination. */
  const missing = async (): Promise<string[]> => {
    const at = await nginx.streams().catch(() => []);
    const pushes = await api('POST', '/rest-api/push/find_all');
    const running =
      pushes.status === 200
        ? (pushes.body as { state: string; sourceStreamName: string }[]).filter((p) => p.state === 'running')
        : [];
    const lost = names.filter(
      (n) => !(at.some((s) => s.name === `rtmp_${n}` && s.width > 0) && running.some((p) => p.sourceStreamName === n)),
    );
    return receiving() ? lost : [...lost, `${watched} (at the receiver)`];
  };
  const allBack = async (): Promise<boolean> => (await missing()).length === 0;
  await waitFor('every push at the destination', allBack, 60_000, 500);
  const avAtStart = await avOffset();
  console.log(`  the sound against the pictures at the receiver: ${avAtStart.toFixed(0)} ms`);

  const samples: Sample[] = [];
  const troubles: Trouble[] = [];
  const sample = async (): Promise<void> => {
    for (const [id, node] of nodes) {
      try {
        const metrics = await fetch(`${node.baseUrl}/metrics`).then((r) => r.text());
        const heap = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics)?.[1] ?? 0);
        const publishing = Number(/^gateway_publishers (\S+)$/m.exec(metrics)?.[1] ?? 0);
        const pushes = [...metrics.matchAll(/^gateway_transponders\{state="[^"]+"\} (\S+)$/gm)].reduce(
          (sum, m) => sum + Number(m[1]),
          0,
        );
        const own = await node.ownPids();
        const children = await node.ffmpegPids();
        readFrameCounters(node.pid, metrics);
        samples.push({
          at: Date.now(),
          loopP99Ms: loopP99Ms(metrics),
          node: id,
          pid: node.pid,
          rssMb: rssMb(node.pid),
          heapMb: heap / 2 ** 20,
          fds: fds(node.pid),
          processes: own.length + children.length,
          streams: publishing + pushes,
        });
      } catch {
        // Killed or restarting: no sample.
      }
    }
  };
  const kinds = [
    'destination restart',
    'destination stopped 10 s',
    ...(clustered ? ['node killed', 'Redis restarted', 'node drained'] : ['gateway restarted']),
    'terminate and start',
    'audio commands',
  ];
  const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!;
  const trouble = async (kind: string): Promise<void> => {
    switch (kind) {
      case 'destination restart':
        return nginx.restart();
      case 'destination stopped 10 s':
        return nginx.restart(10_000);
      case 'node killed': {
        const id = pick([...nodes.keys()]);
        await nodes.get(id)!.signal('SIGKILL');
        nodes.delete(id);
        await sleep(5000);
        return startNode(id);
      }
      case 'gateway restarted': {
        const id = ids[0]!;
        await nodes.get(id)!.signal('SIGTERM');
        nodes.delete(id);
        return startNode(id);
      }
      case 'Redis restarted':
        return redis!.restart();
      case 'node drained': {
        const id = pick([...nodes.keys()]);
        const node = nodes.get(id)!;
        await node.request('POST', '/rest-api/cluster/drain');
        await node.exited();
        nodes.delete(id);
        return startNode(id);
      }
      case 'terminate and start': {
        const name = pick(names);
        const found = await api('POST', '/rest-api/push/find', { streamName: name });
        for (const push of found.status === 200 ? found.body : [])
          await api('POST', '/rest-api/push/terminate', { mediaSessionId: push.mediaSessionId });
        await api('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: nginx.url() });
        if (name === watched) await startWatching();
        return;
      }
      case 'audio commands': {
        const pushes = await api('POST', '/rest-api/push/find_all');
        for (const push of pushes.status === 200 ? pushes.body : []) {
          for (const [path, body] of [
            ['mute', {}],
            ['sound_on', { soundFile: 'chime.wav' }],
            ['sound_off', {}],
            ['unmute', {}],
          ] as const) {
            await api('POST', `/rest-api/push/${path}`, { mediaSessionId: push.mediaSessionId, ...body });
          }
        }
        return;
      }
    }
  };

  const startedAt = Date.now();
  const endAt = startedAt + minutes * 60_000;
  let nextSample = 0;
  let nextTrouble = startedAt + Math.min(chaosMs, 60_000);
  let turn = 0;
  console.log(`soak: ${minutes} min, ${nodeCount} node(s), ${streamCount} streams, trouble every ${chaosMs / 1000} s`);
  while (Date.now() < endAt && !stopAsked) {
    if (Date.now() >= nextSample) {
      nextSample = Date.now() + 10_000;
      await sample();
    }
    if (Date.now() >= nextTrouble) {
      const kind = kinds[turn++ % kinds.length]!;
      const at = Date.now();
      await trouble(kind).catch((error: Error) => console.log(`  ${kind}: ${error.message}`));
      let back = false;
      const until = Date.now() + 60_000;
      while (!back && Date.now() < until && !stopAsked) {
        await keepPublished().catch(() => {});
        back = await allBack().catch(() => false);
        if (!back) await sleep(500);
      }
      troubles.push({ at, kind, back, backMs: Date.now() - at });
      const notBack = back ? [] : await missing().catch(() => names);
      console.log(
        `  ${new Date(at).toISOString()} ${kind}: ${back ? `every push back after ${((Date.now() - at) / 1000).toFixed(1)} s` : `NOT every push back within 60 s (not: ${notBack.join(', ')})`}`,
      );
      nextTrouble = Date.now() + chaosMs;
    }
    await keepPublished().catch(() => {});
    await sleep(1000);
  }

  // Slopes per hour over each node's longest-lived process, after two minutes of warm-up, its streams held constant.
  const slopes: Record<string, Record<string, number>> = {};
  for (const id of ids) {
    const byPid = new Map<number, Sample[]>();
    for (const s of samples)
      if (s.node === id && s.at > startedAt + 120_000) byPid.set(s.pid, [...(byPid.get(s.pid) ?? []), s]);
    const longest = [...byPid.values()].sort((a, b) => b.length - a.length)[0] ?? [];
    const hours = longest.map((s) => (s.at - startedAt) / 3_600_000);
    const streams = longest.map((s) => s.streams);
    const perHour = (measure: (s: Sample) => number): number => slopeAtLoad(hours, streams, longest.map(measure));
    slopes[id] = {
      samples: longest.length,
      'streams min': Math.min(...streams),
      'streams max': Math.max(...streams),
      'rss MB/h': perHour((s) => s.rssMb),
      'heap MB/h': perHour((s) => s.heapMb),
      'fds /h': perHour((s) => s.fds),
      'processes /h': perHour((s) => s.processes),
    };
  }
  const avAtEnd = await avOffset();
  // The event-loop delay, hour by hour: the 99th percentile of the samples' worst thread.
  const loopByHour: number[] = [];
  for (let hour = 0; hour * 3_600_000 < endAt - startedAt; hour++) {
    const within = samples.filter(
      (s) => s.at >= startedAt + hour * 3_600_000 && s.at < startedAt + (hour + 1) * 3_600_000,
    );
    loopByHour.push(
      percentile(
        within.map((s) => s.loopP99Ms),
        99,
      ),
    );
  }
  const frames = frameTotals();
  const sent = frames.gateway_push_frames_total!;
  const notSent = FRAME_COUNTERS.slice(1).reduce((sum, name) => sum + frames[name]!, 0);
  const failed = troubles.filter((t) => !t.back);
  console.log(
    `\n${troubles.length} troubles, every push back after ${troubles.length - failed.length} of them${failed.length ? ` (not after: ${failed.map((t) => t.kind).join(', ')})` : ''}`,
  );
  for (const [id, s] of Object.entries(slopes)) {
    console.log(
      `  ${id}: ${Object.entries(s)
        .map(([k, v]) => `${k} ${Math.round(v * 100) / 100}`)
        .join(', ')}`,
    );
  }
  console.log(`  event-loop delay p99 by hour (worst thread, ms): ${loopByHour.map((ms) => ms.toFixed(1)).join(', ')}`);
  console.log(
    `  video frames sent ${sent}; lost ${frames.gateway_push_frames_lost_total}, dropped ${frames.gateway_push_frames_dropped_total}, discarded ${frames.gateway_push_frames_discarded_total} (${((100 * notSent) / Math.max(1, sent + notSent)).toFixed(3)} %)`,
  );
  const avMoved = Math.abs(avAtEnd - avAtStart);
  console.log(
    `  the sound against the pictures at the receiver: ${avAtStart.toFixed(0)} ms at the start, ${avAtEnd.toFixed(0)} ms at the end (moved ${avMoved.toFixed(0)} ms${avMoved < 40 ? '' : ': MISS, over 40 ms'})`,
  );
  const av = { startMs: avAtStart, endMs: avAtEnd };
  writeFileSync(
    join(WORK, 'soak.json'),
    JSON.stringify(
      { minutes, nodes: nodeCount, streams: streamCount, troubles, slopes, loopByHour, frames, av, samples },
      null,
      2,
    ) + '\n',
  );
  console.log(`written to ${join(WORK, 'soak.json')}`);

  for (const p of publishers.values()) await p.stop().catch(() => {});
  await balancer.stop();
  await receiver.close();
  for (const node of nodes.values()) await node.stop();
  await nginx.stop();
  await redis?.close();
  await stopAllProcesses();
}

// The first SIGINT or SIGTERM ends the run early, with its summary; a second stops at once.
let stopAsked = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (!stopAsked) {
      stopAsked = true;
      console.log(`${signal}: ending the run early, with its summary`);
      return;
    }
    void stopAllProcesses().finally(() => process.exit(130));
  });
}

main().catch(async (error: unknown) => {
  console.error(error);
  await stopAllProcesses();
  process.exit(1);
});
