import { join } from 'node:path';
import { TestBrowser } from '../kit/browser.js';
import type { Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { now, sleep, waitFor } from '../kit/processes.js';
import { RedisServer } from '../kit/redis-server.js';
import { RtmpReceiver, type RtmpMediaMessage } from '../kit/rtmp-receiver.js';
import { freePorts } from '../kit/rtmp-server.js';
import { median } from '../kit/stats.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { TcpBalancer } from '../kit/tcp-balancer.js';
import { round, type Bench } from './report.js';

const SECRET = 'benchmark-cluster-secret-0123456789';

/** Three nodes of the built gateway on one redis-server, with the cluster's default timings. */
class Cluster {
  readonly nodes = new Map<string, GatewayProcess>();
  readonly ports = new Map<string, number>();
  private constructor(
    readonly redis: RedisServer,
    private readonly work: string,
  ) {}

  static async start(work: string, ids: string[]): Promise<Cluster> {
    const cluster = new Cluster(await RedisServer.start(), work);
    const chosen = await freePorts(ids.length);
    ids.forEach((id, i) => cluster.ports.set(id, chosen[i]!));
    await Promise.all(ids.map((id) => cluster.startNode(id)));
    return cluster;
  }

  async startNode(id: string): Promise<GatewayProcess> {
    const port = this.ports.get(id)!;
    const config = {
      redis_url: this.redis.url,
      node_id: id,
      advertise_url: `http://127.0.0.1:${port}`,
      secret: SECRET,
      drain_timeout_ms: 5000,
    };
    const node = await GatewayProcess.start(join(this.work, `cluster-${id}.log`), {
      GATEWAY_HTTP_PORT: String(port),
      GATEWAY_CLUSTER: JSON.stringify(config),
      GATEWAY_RUN_DIR: this.work,
    });
    this.nodes.set(id, node);
    await waitFor(
      `${id} in the cluster`,
      async () =>
        ((await node.request('GET', '/rest-api/cluster/nodes')).body?.nodes ?? []).some(
          (n: { id: string }) => n.id === id,
        ),
      10_000,
    );
    return node;
  }

  serving(stream: string): Promise<string | undefined> {
    return GatewayProcess.serving(this.nodes, stream);
  }

  any(except?: string): GatewayProcess {
    return [...this.nodes.entries()].find(([id]) => id !== except)![1];
  }

  async stop(): Promise<void> {
    for (const node of this.nodes.values()) await node.stop();
    await this.redis.close();
  }
}

/** Video frames of `streamName` as they arrive, until `stop()`; the largest gap between two, and when. */
function watchVideo(receiver: RtmpReceiver, streamName: string): { frames: RtmpMediaMessage[]; stop(): void } {
  const frames: RtmpMediaMessage[] = [];
  const listener = (m: RtmpMediaMessage): void => {
    if (m.kind === 'video' && !m.sequenceHeader && m.publish.streamName === streamName) frames.push(m);
  };
  receiver.on('media', listener);
  return { frames, stop: () => receiver.off('media', listener) };
}

/**
 * The cluster: three nodes of the built gateway on one redis-server, with the default timings
 * (heartbeat 1 s, node timeout and lease 3 s).
 * - Node loss: a node serving a stream with a REST push is killed with SIGKILL; the publisher (as
 *   OBS or the SDK would) publishes again through a live node every 200 ms until it is taken; from
 *   the kill to the push's first video frame at the destination again, and the frames it did not
 *   get meanwhile (at the publisher's 30 fps).
 * - Drain: the publish page in Chromium through a load balancer; the node serving it is drained;
 *   the gap at the destination.
 * - Forwarding: a REST call (`push/find`) answered by the node holding the stream, or sent to
 *   another node which forwards it.
 * - Redis: commands per second per node at rest, and per push.
 */
export async function cluster(bench: Bench, fixture: Fixture, receiver: RtmpReceiver): Promise<void> {
  const kills = bench.quick ? 2 : 5;
  console.log(`\nCluster: three nodes on one redis-server (node loss x ${kills}, drain, forwarding, Redis load)`);
  const nodes = await Cluster.start(bench.work, ['n1', 'n2', 'n3']);
  try {
    const lossMs: number[] = [];
    const lostFrames: number[] = [];
    for (let run = 0; run < kills; run++) {
      const name = `loss${run}`;
      let publisher = await SyntheticPublisher.publish(fixture, nodes.any().baseUrl, name);
      const serving = await waitFor('the serving node', () => nodes.serving(name), 10_000);
      const started = await nodes
        .any()
        .request('POST', '/rest-api/push/startup', { streamName: name, rtmpUrl: receiver.url() });
      if (started.status !== 200)
        throw new Error(`startup answered ${started.status}: ${JSON.stringify(started.body)}`);
      const video = watchVideo(receiver, `rtmp_${name}`); // the default naming: rtmp_ and the stream
      await waitFor('video at the destination', () => video.frames.length > 30, 10_000);
      const killedAt = now();
      await nodes.nodes.get(serving)!.signal('SIGKILL');
      nodes.nodes.delete(serving);
      await publisher.vanish();
      const before = video.frames.length;
      // Published again through a live node until one takes it (the claim of the dead node ends with its lease).
      for (;;) {
        try {
          publisher = await SyntheticPublisher.publish(fixture, nodes.any().baseUrl, name);
          break;
        } catch {
          await sleep(200);
        }
      }
      await waitFor('video at the destination again', () => video.frames.length > before, 20_000, 5);
      const back = video.frames[before]!.arrivalMs;
      video.stop();
      lossMs.push(back - killedAt);
      lostFrames.push(Math.max(0, Math.round(((back - video.frames[before - 1]!.arrivalMs) * 30) / 1000) - 1));
      console.log(
        `    run ${run + 1}: ${serving} killed; media at the destination again after ${Math.round(back - killedAt)} ms`,
      );
      await nodes.any().request('POST', '/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId });
      await publisher.stop();
      await nodes.startNode(serving);
    }
    bench.details.clusterNodeLossMs = lossMs.map(round);
    bench.report('cluster: node killed -> media at the destination again, median', median(lossMs) / 1000, 's', {
      max: 5,
      runs: lossMs.map((ms) => ms / 1000),
    });
    bench.report('cluster: node killed -> media at the destination again, max', Math.max(...lossMs) / 1000, 's', {
      max: 5,
    });
    bench.report('cluster: frames not delivered during a node loss, median', median(lostFrames), 'frames', {
      runs: lostFrames,
    });

    // Drain, with the SDK in Chromium through a load balancer.
    const balancer = await TcpBalancer.start([...nodes.ports.values()].map((port) => ({ host: '127.0.0.1', port })));
    const browser = await TestBrowser.launch();
    const gaps: number[] = [];
    try {
      const page = browser.page;
      await page.goto(`${balancer.url}/`);
      await page.fill('#name', 'drain');
      await page.fill('#rtmpUrl', receiver.url());
      await page.uncheck('#fullUrl');
      await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 10_000);
      await page.click('#publish');
      const video = watchVideo(receiver, 'rtmp_drain');
      await waitFor('video at the destination', () => video.frames.length > 30, 15_000);
      for (let run = 0; run < (bench.quick ? 1 : 3); run++) {
        const serving = (await waitFor('the serving node', () => nodes.serving('drain'), 10_000))!;
        const node = nodes.nodes.get(serving)!;
        const before = video.frames.length;
        await node.request('POST', '/rest-api/cluster/drain');
        await node.exited();
        nodes.nodes.delete(serving);
        await waitFor('video again after the drain', () => video.frames.length > before + 30, 15_000);
        let gap = 0;
        for (let i = before; i < video.frames.length; i++)
          gap = Math.max(gap, video.frames[i]!.arrivalMs - video.frames[i - 1]!.arrivalMs);
        gaps.push(gap);
        console.log(
          `    drain ${run + 1}: ${serving} drained; the largest gap between frames at the destination ${Math.round(gap)} ms`,
        );
        await nodes.startNode(serving);
      }
      video.stop();
      await page.click('#stop');
    } finally {
      await browser.close();
      await balancer.stop();
    }
    bench.details.clusterDrainGapMs = gaps.map(round);
    bench.report('cluster: drain -> gap at the destination, max', Math.max(...gaps) / 1000, 's', { max: 2 });

    // Forwarding: the same call at the stream's node and through another.
    const fwd = await SyntheticPublisher.publish(fixture, nodes.any().baseUrl, 'fwd');
    const holder = (await waitFor('the serving node', () => nodes.serving('fwd'), 10_000))!;
    const time = async (node: GatewayProcess): Promise<number> => {
      const samples: number[] = [];
      for (let i = 0; i < 50; i++) {
        const t0 = now();
        await node.request('POST', '/rest-api/stream/find', { name: 'fwd' });
        samples.push(now() - t0);
      }
      return median(samples);
    };
    const direct = await time(nodes.nodes.get(holder)!);
    const forwarded = await time(nodes.any(holder));
    bench.report("cluster: REST call at the stream's node, median", direct, 'ms');
    bench.report('cluster: the same call through another node (forwarded), median', forwarded, 'ms');
    bench.report('cluster: forwarding overhead of a REST call, median', forwarded - direct, 'ms');

    // Redis load: at rest, then with pushes.
    const commands = async (): Promise<number> => {
      const info = await new Promise<string>(
        (resolve, reject) =>
          void import('node:child_process').then(({ execFile }) =>
            execFile('redis-cli', ['-p', String(nodes.redis.port), 'INFO', 'stats'], (e, out) =>
              e ? reject(e as Error) : resolve(out),
            ),
          ),
      );
      return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
    };
    const rate = async (seconds: number): Promise<number> => {
      const a = await commands();
      await sleep(seconds * 1000);
      return ((await commands()) - a - 2) / seconds; // less the two INFO
    };
    const atRest = await rate(10);
    const pushes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await nodes.any().request('POST', '/rest-api/push/startup', {
        streamName: 'fwd',
        rtmpUrl: `${receiver.url()}/fwd${i}`,
        rtmpTransponderFullUrl: true,
      });
      if (res.status === 200) pushes.push(res.body.mediaSessionId);
    }
    await sleep(2000);
    const withPushes = await rate(10);
    bench.report('cluster: Redis commands per second, 3 nodes at rest', atRest, '/s');
    bench.report(
      'cluster: Redis commands per second per push (running, after its start)',
      (withPushes - atRest) / Math.max(1, pushes.length),
      '/s',
    );
    for (const id of pushes) await nodes.any().request('POST', '/rest-api/push/terminate', { mediaSessionId: id });
    await fwd.stop();
  } finally {
    await nodes.stop();
  }
}
