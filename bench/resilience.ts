import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { now, sleep, waitFor } from '../kit/processes.js';
import { TestNetwork } from '../kit/netns.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../kit/rtmp-receiver.js';
import { NginxRtmp } from '../kit/rtmp-server.js';
import type { Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { median } from '../kit/stats.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';

import type { Report } from './report.js';

async function startPush(gateway: GatewayProcess, streamName: string, rtmpUrl: string): Promise<string> {
  await sleep(1200);
  const started = await gateway.request('POST', '/rest-api/push/startup', { streamName, rtmpUrl });
  if (started.status !== 200) throw new Error(`startup answered ${started.status}: ${JSON.stringify(started.body)}`);
  return started.body.mediaSessionId;
}

/**
 * The RTMP server goes away for a while and comes back on the same port (a restart), under a push
 * that was healthy (each run on a new push: waits grow over outages close together): from
 * the moment the server accepts connections again to the first video frame it gets (a keyframe,
 * after headers).
 */
export async function destinationRestart(
  gateway: GatewayProcess,
  fixture: Fixture,
  report: Report,
  downMs: number[],
): Promise<number[]> {
  const name = 'restart';
  let receiver = await RtmpReceiver.start();
  const port = receiver.port;
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
  const results: number[] = [];
  try {
    for (const down of downMs) {
      const id = await startPush(gateway, name, receiver.url());
      await sleep(1500);
      await receiver.close();
      await sleep(down);
      receiver = await RtmpReceiver.start(port);
      const acceptingAt = now();
      const frame = await new Promise<RtmpMediaMessage>((resolve) =>
        receiver.on('media', (m) => m.kind === 'video' && !m.sequenceHeader && resolve(m)),
      );
      results.push(frame.arrivalMs - acceptingAt);
      console.log(
        `    down ${down} ms: first frame ${Math.round(frame.arrivalMs - acceptingAt)} ms after the server accepted again (keyframe: ${frame.key})`,
      );
      await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: id });
    }
  } finally {
    await publisher.stop();
    await receiver.close();
  }
  report('destination restart: server accepts -> media flows, median', median(results) / 1000, 's', {
    runs: results.map((ms) => ms / 1000),
  });
  report('destination restart: server accepts -> media flows, max', Math.max(...results) / 1000, 's', { max: 1.5 });
  return results;
}

/**
 * The link to the destination (a veth into a namespace of the benchmark's own) goes down for 10 s:
 * from the link coming back to nginx-rtmp counting bytes of the stream on a new connection.
 */
export async function networkCut(
  gateway: GatewayProcess,
  fixture: Fixture,
  report: Report,
  runs: number,
): Promise<number[] | undefined> {
  if (!(await TestNetwork.available())) {
    console.log('    skipped: needs root and iproute2 for a network namespace');
    return undefined;
  }
  const net = await TestNetwork.create();
  const nginx = await NginxRtmp.start({ netns: { name: net.ns, address: net.peerAddress } }).catch(
    async (error: unknown) => {
      await net.destroy();
      throw error;
    },
  );
  const name = 'cut';
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
  const results: number[] = [];
  try {
    const id = await startPush(gateway, name, nginx.url());
    for (let run = 0; run < runs; run++) {
      await sleep(2000);
      const before = (await nginx.streams()).find((s) => s.name === `rtmp_${name}`);
      if (!before) throw new Error('the stream is not at nginx before the cut');
      await net.cut();
      await sleep(10_000);
      await net.restore();
      const backAt = now();
      await waitFor(
        'media on a new connection',
        async () => {
          const stream = (await nginx.streams().catch(() => [])).find((s) => s.name === `rtmp_${name}`);
          return stream && stream.clientId !== before.clientId && stream.bytesIn > 0;
        },
        30_000,
        20,
      );
      results.push(now() - backAt);
      const state = await gateway.push(id);
      console.log(
        `    run ${run + 1}: media flowing ${Math.round(now() - backAt)} ms after the link came back (${state.counters.drops} drops, attempt ${state.reconnectAttempt})`,
      );
    }
    await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: id });
  } finally {
    await publisher.stop();
    await nginx.stop();
    await net.destroy();
  }
  report('10 s network cut: link back -> media flows, max', Math.max(...results) / 1000, 's', { max: 3 });
  return results;
}

/**
 * Processes, open descriptors and UDP sockets of the gateway and its children. Connections to the
 * REST port are left out: they are the benchmark's own HTTP client, kept alive as it likes.
 */
async function resources(
  pid: number,
  restPort: number,
): Promise<{ processes: number; fds: number; udp: number; targets: string[] }> {
  const pids = [pid, ...(await children(pid))];
  const udpInodes = await socketInodes(['/proc/net/udp', '/proc/net/udp6']);
  const restInodes = await socketInodes(['/proc/net/tcp', '/proc/net/tcp6'], restPort);
  let fds = 0;
  let udp = 0;
  const targets: string[] = [];
  for (const p of pids) {
    for (const fd of await readdir(`/proc/${p}/fd`).catch(() => [])) {
      const target = await readlink(join(`/proc/${p}/fd`, fd)).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && restInodes.has(inode)) continue;
      fds++;
      if (inode && udpInodes.has(inode)) udp++;
      targets.push(target.replace(/\[\d+\]/, ''));
    }
  }
  return { processes: pids.length, fds, udp, targets };
}

/** Inodes of the sockets listed in /proc/net files, those bound to `localPort` only when given. */
async function socketInodes(files: string[], localPort?: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const port = parseInt(fields[1]?.split(':')[1] ?? '', 16);
      if (fields[9] && (localPort === undefined || port === localPort)) inodes.add(fields[9]);
    }
  }
  return inodes;
}

async function children(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(/^\d+ \(.*\) \S+ (\d+)/s.exec(stat)?.[1]);
    if (ppid === pid) out.push(Number(entry));
  }
  return out;
}

/**
 * `cycles` drops of the destination's connection, each followed by a reconnect, on a gateway of
 * its own restoring after 100 ms: what the gateway holds before and after must be the same.
 */
export async function reconnectCycles(
  logFile: string,
  fixture: Fixture,
  report: Report,
  cycles: number,
): Promise<void> {
  const gateway = await GatewayProcess.start(logFile, { GATEWAY_RTMP_PUSH_RESTORE_INTERVAL_MS: '100' });
  const receiver = await RtmpReceiver.start();
  const name = 'cycles';
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
  try {
    const id = await startPush(gateway, name, receiver.url());
    await sleep(1000);
    const restPort = Number(new URL(gateway.baseUrl).port);
    const before = await resources(gateway.pid, restPort);
    const started = now();
    for (let cycle = 1; cycle <= cycles; cycle++) {
      receiver.dropAll();
      await waitFor(
        `reconnect ${cycle}`,
        async () => {
          const state = await gateway.push(id);
          return state?.state === 'running' && state.counters.reconnects === cycle;
        },
        10_000,
        10,
      );
    }
    const seconds = (now() - started) / 1000;
    await sleep(2500); // ffmpeg processes replaced in the last cycle have ended
    const after = await resources(gateway.pid, restPort);
    const counts = (r: { targets: string[] }): Map<string, number> =>
      r.targets.reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map<string, number>());
    const was = counts(before);
    const grown = [...counts(after)]
      .filter(([t, n]) => n > (was.get(t) ?? 0))
      .map(([t, n]) => `${t} ${was.get(t) ?? 0} -> ${n}`);
    const brief = (r: typeof before): string => `${r.processes} processes, ${r.fds} fds, ${r.udp} UDP sockets`;
    console.log(
      `    ${cycles} cycles in ${seconds.toFixed(1)} s; before: ${brief(before)}; after: ${brief(after)}${grown.length ? `; grown: ${grown.join(', ')}` : ''}`,
    );
    report(`after ${cycles} reconnects: extra processes`, after.processes - before.processes, '', { max: 0 });
    report(`after ${cycles} reconnects: extra file descriptors`, after.fds - before.fds, '', { max: 0 });
    report(`after ${cycles} reconnects: extra UDP sockets`, after.udp - before.udp, '', { max: 0 });
    await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: id });
  } finally {
    await publisher.stop();
    await receiver.close();
    await gateway.stop();
  }
}
