import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, stopProcess } from './processes.js';

/** A UDP port free on loopback now. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * An SRT destination on loopback: ffmpeg in listener mode (with a passphrase, if given) writing
 * what one caller sends, unchanged, into an MPEG-TS file. Each session (each start) has its own
 * file; `restart` stops this one and listens again on the same port.
 */
export class SrtListener {
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #sessions = 0;
  /** ffmpeg's log of the current session. */
  log = '';

  private constructor(
    readonly port: number,
    readonly passphrase: string | undefined,
    dir: string,
  ) {
    this.#dir = dir;
  }

  static async start(passphrase?: string): Promise<SrtListener> {
    const listener = new SrtListener(await freeUdpPort(), passphrase, await mkdtemp(join(tmpdir(), 'srt-listener-')));
    listener.#listen();
    return listener;
  }

  /** The file the current session writes. */
  get file(): string {
    return join(this.#dir, `session-${this.#sessions}.ts`);
  }

  /** The destination URL for the gateway, with `query` after the address. */
  url(query = ''): string {
    return `srt://127.0.0.1:${this.port}${query ? `?${query}` : ''}`;
  }

  /** Bytes the current session wrote so far. */
  async received(): Promise<number> {
    return stat(this.file).then(
      (s) => s.size,
      () => 0,
    );
  }

  /** Whether the listener's ffmpeg still runs (it ends when its caller goes). */
  get running(): boolean {
    return !!this.#child && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async restart(): Promise<void> {
    if (this.#child) await stopProcess(this.#child, 1000);
    this.#listen();
  }

  async stop(): Promise<void> {
    if (this.#child) await stopProcess(this.#child, 1000);
    this.#child = undefined;
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.#dir, { recursive: true, force: true });
  }

  #listen(): void {
    this.#sessions++;
    this.log = '';
    const options = [`mode=listener`, ...(this.passphrase ? [`passphrase=${this.passphrase}`] : [])].join('&');
    this.#child = startProcess('ffmpeg', [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'info',
      '-i',
      `srt://127.0.0.1:${this.port}?${options}`,
      '-map',
      '0',
      '-c',
      'copy',
      '-f',
      'mpegts',
      '-y',
      this.file,
    ]);
    this.#child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
  }
}
