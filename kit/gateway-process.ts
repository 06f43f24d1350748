import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_NETWORKS } from './netns.js';
import { childPids, descendants, startProcess, stopProcess, waitFor } from './processes.js';
import { freePort } from './rtmp-server.js';
import { THIS_MACHINE } from './this-machine.js';

/**
 * The built gateway as its own process, configured through the environment as an operator would,
 * so that its CPU and memory can be read from /proc apart from the benchmark's.
 */
export class GatewayProcess {
  /** Settles once the process has exited and its own data folder is removed. */
  readonly #cleaned: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly baseUrl: string,
    /** The data folder made for this gateway alone (its kept pushes), removed once it has exited, however it ended. */
    ownDataDir?: string,
  ) {
    this.#cleaned = new Promise<void>((resolve) => child.once('exit', () => resolve())).then(async () => {
      if (ownDataDir) await rm(ownDataDir, { recursive: true, force: true });
    });
  }

  /**
   * `script`: the built server by default; tests run `kit/server-from-source.ts` with `--import tsx`. A variable
   * set to `undefined` in `env` is left out, so the gateway takes its default. `host`: a host of the
   * test's own (a network namespace) to run the gateway on, listening on its address there.
   */
  static async start(
    logFile: string,
    env: Record<string, string | undefined> = {},
    nodeArgs: string[] = [],
    script = 'dist/server/server.js',
    host?: { ns: string; peerAddress: string },
  ): Promise<GatewayProcess> {
    const port = env.GATEWAY_HTTP_PORT ?? String(await freePort());
    const address = host?.peerAddress ?? '127.0.0.1';
    // Kept pushes go to a folder of this gateway's own, unless the caller gives one (to restart on it).
    const ownDataDir = env.GATEWAY_DATA_DIR ? undefined : await mkdtemp(join(tmpdir(), 'gateway-data-'));
    const command = ['node', ...nodeArgs, script];
    const [program, ...args] = host ? ['ip', 'netns', 'exec', host.ns, ...command] : command;
    const variables: Record<string, string | undefined> = {
      // As `npm start` and the container start it (an operator's own value kept).
      MALLOC_ARENA_MAX: '2',
      ...process.env,
      GATEWAY_HTTP_HOST: address,
      GATEWAY_HTTP_PORT: port,
      GATEWAY_LOG_LEVEL: 'warn',
      GATEWAY_WEBRTC_ICE_ADDRESSES: '["127.0.0.1"]',
      GATEWAY_WEBRTC_ICE_REMOTE_NETWORKS: JSON.stringify(THIS_MACHINE),
      GATEWAY_DESTINATION_ALLOW_LOOPBACK: 'true',
      // Every synthetic publisher of the benchmark comes from 127.0.0.1.
      GATEWAY_LIMIT_SESSIONS_PER_CLIENT: '1000',
      // Capacity is measured up to the point where streams degrade, not where the gateway would refuse.
      GATEWAY_OVERLOAD_EVENT_LOOP_DELAY_MS: '0',
      GATEWAY_OVERLOAD_EVENT_LOOP_UTILIZATION: '0',
      GATEWAY_OVERLOAD_MACHINE_CPU_PERCENT: '0',
      // Destinations: loopback, and the hosts in network namespaces the benchmark and tests make.
      GATEWAY_DESTINATION_ALLOWED_HOSTS: JSON.stringify(['127.0.0.0/8', TEST_NETWORKS]),
      ...(ownDataDir ? { GATEWAY_DATA_DIR: ownDataDir } : {}),
      ...env,
    };
    const child = startProcess(program!, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: Object.fromEntries(Object.entries(variables).filter(([, value]) => value !== undefined)),
    });
    const log = createWriteStream(logFile);
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const gateway = new GatewayProcess(child, `http://${address}:${port}`, ownDataDir);
    try {
      await waitFor(`the gateway to listen (log: ${logFile})`, async () => {
        if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}; see ${logFile}`);
        return fetch(`${gateway.baseUrl}/health`).then(
          (r) => r.ok,
          () => false,
        );
      });
    } catch (error) {
      await gateway.stop();
      throw error;
    }
    return gateway;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Which of `nodes` (a cluster's, by id) receives `stream` from its publisher: the one whose own metrics count its packets. */
  static async serving(nodes: ReadonlyMap<string, GatewayProcess>, stream: string): Promise<string | undefined> {
    for (const [id, node] of nodes) {
      const text = await fetch(`${node.baseUrl}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      if (text.includes(`gateway_publisher_packets_total{stream="${stream}"}`)) return id;
    }
    return undefined;
  }

  /** PIDs of the ffmpeg processes the gateway runs now. */
  ffmpegPids(): Promise<number[]> {
    return this.#children('ffmpeg');
  }

  /** PIDs of the gateway's mediasoup worker processes (none on werift): its WebRTC media runs there. */
  mediaWorkerPids(): Promise<number[]> {
    return this.#children('mediasoup-worke');
  }

  /** The gateway's spawner, which starts its ffmpeg: found by its program (Node 24 names its main thread otherwise). */
  async spawnerPids(): Promise<number[]> {
    const commandLine = (pid: number): Promise<string> => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const found: number[] = [];
    for (const { pid } of await descendants(this.pid))
      if (/\/ffmpeg\/spawner\.(js|ts)\0/.test(await commandLine(pid))) found.push(pid);
    return found;
  }

  /** The gateway's own processes, ffmpeg aside: Node, its spawner, and the media workers when it has them. */
  async ownPids(): Promise<number[]> {
    return [this.pid, ...(await this.spawnerPids()), ...(await this.mediaWorkerPids())];
  }

  /** Descendants of the gateway whose command is `command` (as /proc/PID/stat shows it: 15 characters at most). */
  #children(command: string): Promise<number[]> {
    return childPids(this.pid, command);
  }

  /** The push of this id as `find_all` lists it, or undefined when it is not listed. */
  async push(mediaSessionId: string): Promise<any> {
    const all = await this.request('POST', '/rest-api/push/find_all');
    return Array.isArray(all.body)
      ? all.body.find((t: { mediaSessionId: string }) => t.mediaSessionId === mediaSessionId)
      : undefined;
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const send = (): Promise<Response> =>
      fetch(this.baseUrl + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    // A kept-alive connection the gateway closed as idle just as the request went out (the load
    // generator's own timers run late on a saturated machine): the request went unread, so it
    // is sent once more, on a new connection (a request the gateway had read would have been answered).
    const response = await send().catch((error: Error & { cause?: { code?: string; message?: string } }) => {
      if (error.cause?.code === 'UND_ERR_SOCKET' && error.cause.message === 'other side closed') return send();
      throw error;
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  async stop(): Promise<void> {
    await stopProcess(this.child, 15_000);
    await this.#cleaned;
  }

  /** Resolves with the gateway's exit code once it has exited by itself (null when a signal ended it). */
  async exited(): Promise<number | null> {
    await this.#cleaned;
    return this.child.exitCode;
  }

  /** Sends `signal` to the gateway alone and resolves with its exit code (null when a signal ended it). */
  async signal(signal: NodeJS.Signals): Promise<number | null> {
    process.kill(this.pid, signal);
    return this.exited();
  }
}
