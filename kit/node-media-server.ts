import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, stopProcess, waitFor } from './processes.js';
import { freePorts } from './rtmp-server.js';

/** node-media-server's own launcher, from npm. */
const APP = fileURLToPath(import.meta.resolve('node-media-server/bin/app.js'));

/** Whether something listens on `port` of loopback. */
const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/**
 * node-media-server 4 (npm), an RTMP server that reads Enhanced RTMP: it records every stream
 * published to it, as it came, in FLV files of its own (`recordings`), one per publish. It runs as
 * a process of its own on loopback, in a folder of its own, stopped by PID; `restart` keeps its port.
 */
export class NodeMediaServer {
  #child: ChildProcess | undefined;
  /** What it said last (its log is drained so that it never blocks on a full pipe). */
  #said = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<NodeMediaServer> {
    const dir = await mkdtemp(join(tmpdir(), 'nms-'));
    const [port, httpPort] = await freePorts(2);
    const server = new NodeMediaServer(dir, port!);
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        bind: '127.0.0.1',
        notify: { url: '' },
        store: { path: join(dir, 'data') },
        auth: { play: false, publish: false, secret: '' },
        rtmp: { port },
        http: { port: httpPort }, // unused by the tests, but it always serves HTTP
        webadmin: { enable: false },
        record: { auto: true, path: join(dir, 'record') },
      }),
    );
    await server.#run();
    return server;
  }

  async #run(): Promise<void> {
    const child = startProcess(process.execPath, [APP, '-c', join(this.dir, 'config.json'), '--no-admin'], {
      cwd: this.dir,
    });
    this.#child = child;
    const hear = (data: Buffer): void => void (this.#said = (this.#said + data.toString()).slice(-16_000));
    child.stdout?.on('data', hear);
    child.stderr?.on('data', hear);
    try {
      await waitFor('node-media-server to listen', async () => {
        if (child.exitCode !== null) throw new Error(`node-media-server exited: ${this.#said}`);
        return listening(this.port);
      });
    } catch (error) {
      await stopProcess(child);
      throw error;
    }
  }

  /** Where to publish `stream` (its application is `live`). */
  url(stream: string): string {
    return `rtmp://127.0.0.1:${this.port}/live/${stream}`;
  }

  /** The FLV files it recorded of `stream`, oldest first. */
  async recordings(stream: string): Promise<string[]> {
    const folder = join(this.dir, 'record', 'live', stream);
    const names = await readdir(folder).catch(() => [] as string[]);
    return names
      .filter((name) => name.endsWith('.flv'))
      .sort((a, b) => Number.parseInt(a) - Number.parseInt(b))
      .map((name) => join(folder, name));
  }

  /** Whether the latest publish of `stream` it heard of has ended (its RTMP session closed). */
  publishEnded(stream: string): boolean {
    const starts = [...this.#said.matchAll(new RegExp(`RTMP session (\\w+) \\S+ start push /live/${stream}\\n`, 'g'))];
    const last = starts.at(-1);
    return last !== undefined && this.#said.includes(`RTMP session ${last[1]} close`, last.index);
  }

  get log(): string {
    return this.#said;
  }

  /** Stops it (its connections drop), keeping its folder. */
  async kill(): Promise<void> {
    if (this.#child) await stopProcess(this.#child);
    this.#child = undefined;
  }

  /** Starts it again on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#run();
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}
