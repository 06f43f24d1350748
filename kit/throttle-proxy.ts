import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './rtmp-server.js';

/** What the proxy does to the connections through it. */
export type ThrottleMode = 'pass' | 'stopped' | 'killed' | 'slow';

/**
 * A TCP proxy on loopback in front of a destination, to play a server in trouble:
 * - `stopped`: nothing more is read from the client or sent to it (a server process stopped: its
 *   socket's buffers fill, nothing is acknowledged), connections stay open;
 * - `killed`: every connection is reset and new ones are refused (a server process killed);
 * - `slow`: the client is read at `bytesPerSecond` (a server on a thin link);
 * - `pass`: as it is.
 */
export class ThrottleProxy {
  #mode: ThrottleMode = 'pass';
  #server: Server | undefined;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  #budget = 0;
  readonly #refill: NodeJS.Timeout;

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
    private readonly bytesPerSecond: number,
  ) {
    // The slow mode's budget, refilled every 50 ms; paused sockets are resumed when there is some.
    this.#refill = setInterval(() => {
      if (this.#mode !== 'slow') return;
      this.#budget = Math.min(this.bytesPerSecond / 20, this.#budget + this.bytesPerSecond / 20);
      if (this.#budget > 0) for (const { client } of this.#pairs) if (client.isPaused()) client.resume();
    }, 50);
  }

  static async start(target: { host: string; port: number }, bytesPerSecond = 50_000): Promise<ThrottleProxy> {
    // A port below the ephemeral range: no outgoing connection takes it while the proxy is `killed`.
    const proxy = new ThrottleProxy(await freePort(), target, bytesPerSecond);
    await proxy.#listen();
    return proxy;
  }

  url(app = 'live'): string {
    return `rtmp://127.0.0.1:${this.port}/${app}`;
  }

  get mode(): ThrottleMode {
    return this.#mode;
  }

  async set(mode: ThrottleMode): Promise<void> {
    const before = this.#mode;
    this.#mode = mode;
    if (mode === 'killed') {
      for (const { client, upstream } of this.#pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      this.#pairs.clear();
      await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
      this.#server = undefined;
      return;
    }
    if (before === 'killed') await this.#listen();
    for (const { client, upstream } of this.#pairs) {
      if (mode === 'stopped') {
        client.pause();
        upstream.pause();
      } else {
        client.resume();
        upstream.resume();
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#refill);
    await this.set('killed');
  }

  async #listen(): Promise<void> {
    const server = createServer((client) => this.#accept(client));
    server.on('error', () => {});
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.#server = server;
  }

  #accept(client: Socket): void {
    const upstream = createConnection(this.target);
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const end = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (data) => {
      upstream.write(data);
      if (this.#mode !== 'slow') return;
      this.#budget -= data.length;
      if (this.#budget <= 0) client.pause();
    });
    upstream.on('data', (data) => client.write(data));
    if (this.#mode === 'stopped') {
      client.pause();
      upstream.pause();
    }
  }
}
