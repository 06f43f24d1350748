import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, stopProcess, waitFor } from './processes.js';
import { freePort } from './rtmp-server.js';

/**
 * Debian's `redis-server` on a loopback port of its own, for a test or the benchmark: no
 * persistence unless asked (`appendonly`), stopped by PID. `stop()` then `start()` again on the
 * same port is a Redis restart; with `empty`, its data is gone as after a restart without a disk.
 */
export class RedisServer {
  #process: ChildProcess | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly persist: boolean,
  ) {}

  static async start(options: { persist?: boolean } = {}): Promise<RedisServer> {
    const server = new RedisServer(await mkdtemp(join(tmpdir(), 'redis-')), await freePort(), options.persist ?? false);
    await server.#spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  get running(): boolean {
    return this.#process !== undefined && this.#process.exitCode === null && this.#process.signalCode === null;
  }

  async #spawn(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.persist ? 'yes' : 'no',
      '--protected-mode',
      'yes',
    ];
    const child = startProcess('redis-server', args);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    this.#process = child;
    await waitFor(`redis-server to listen on ${this.port}`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
      return (await this.command('PING')) === '+PONG';
    });
  }

  /** Stops Redis (by PID); `restart` starts it again on the same port. */
  async stop(): Promise<void> {
    if (this.#process) await stopProcess(this.#process);
    this.#process = undefined;
  }

  /** Starts it again on the same port; `empty`: with none of its data (as a Redis without a disk). */
  async restart(options: { empty?: boolean } = {}): Promise<void> {
    await this.stop();
    if (options.empty) {
      await rm(this.dir, { recursive: true, force: true });
      const { mkdir } = await import('node:fs/promises');
      await mkdir(this.dir);
    }
    await this.#spawn();
  }

  /** One command in Redis's inline form; its first reply line (`+PONG`, `:3`, `$-1`). Undefined when it is not reachable. */
  command(...words: string[]): Promise<string | undefined> {
    return new Promise((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port: this.port });
      let reply = '';
      socket.setTimeout(2000, () => socket.destroy());
      socket.once('error', () => resolve(undefined));
      socket.once('close', () => resolve(reply.split('\r\n')[0] || undefined));
      socket.on('data', (d: Buffer) => {
        reply += d.toString();
        if (reply.includes('\r\n')) socket.end();
      });
      socket.write(`${words.join(' ')}\r\n`);
    });
  }

  /** Every key and every value Redis holds, as `redis-cli --scan` and a dump would show them. */
  async dump(): Promise<string> {
    const { execFile } = await import('node:child_process');
    const run = (args: string[]): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile('redis-cli', ['-p', String(this.port), ...args], (error, stdout) =>
          error ? reject(error as Error) : resolve(stdout),
        ),
      );
    const keys = (await run(['--scan'])).split('\n').filter(Boolean);
    const parts = [keys.join('\n')];
    for (const key of keys) {
      const type = (await run(['TYPE', key])).trim();
      const read =
        type === 'string'
          ? ['GET', key]
          : type === 'hash'
            ? ['HGETALL', key]
            : type === 'set'
              ? ['SMEMBERS', key]
              : type === 'zset'
                ? ['ZRANGE', key, '0', '-1', 'WITHSCORES']
                : ['TYPE', key];
      parts.push(await run(read));
    }
    return parts.join('\n');
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
