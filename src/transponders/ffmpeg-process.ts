import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { TypedEmitter } from '../events.js';

export type FfmpegEvents = {
  /** A line of ffmpeg's log. */
  line: [line: string];
  /** Bytes ffmpeg wrote to its standard output. */
  output: [data: Buffer];
  exit: [code: number | null, signal: NodeJS.Signals | null];
};

const live = new Set<FfmpegProcess>();

/** How long `q` on stdin gets before signals: ffmpeg reads it between packets (audio: every 20 ms). */
const QUIT_GRACE_MS = 300;
/** Gap between the two SIGINTs, so the kernel delivers two signals rather than merging them. */
const SIGNAL_GAP_MS = 100;

/**
 * One ffmpeg child in its own process group. `stop()` escalates `q` on stdin → SIGINT twice →
 * SIGKILL on the group. ffmpeg reads `q` only between input packets, and after its start-up a
 * single SIGINT only asks the main loop to end: the second one also interrupts a blocking read,
 * which is what ends an ffmpeg whose input has gone quiet.
 */
export class FfmpegProcess extends TypedEmitter<FfmpegEvents> {
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly exited: Promise<void>;
  #exitCode: number | null | undefined;
  #stopping: Promise<void> | undefined;

  constructor(binary: string, args: readonly string[]) {
    super();
    this.#child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exitCode = code;
        live.delete(this);
        this.safeEmit('exit', code, signal);
        resolve();
      });
    });
    this.#child.once('error', (error) => {
      this.safeEmit('line', `failed to start ${binary}: ${error.message}`);
    });
    this.#child.stdin.on('error', () => {}); // EPIPE once ffmpeg is gone
    createInterface({ input: this.#child.stderr }).on('line', (line) => this.safeEmit('line', line));
    this.#child.stdout.on('data', (data: Buffer) => this.safeEmit('output', data));
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#exitCode === undefined && this.#child.pid !== undefined;
  }

  /** Sends a line to ffmpeg's stdin command interface. */
  command(line: string): void {
    if (this.running) this.#child.stdin.write(`${line}\n`);
  }

  stop(stepTimeoutMs: number): Promise<void> {
    this.#stopping ??= this.#escalate(stepTimeoutMs);
    return this.#stopping;
  }

  async #escalate(stepTimeoutMs: number): Promise<void> {
    if (!this.running) return this.exited;
    this.command('q');
    if (await this.#exitsWithin(Math.min(QUIT_GRACE_MS, stepTimeoutMs))) return;
    this.#signalGroup('SIGINT');
    if (await this.#exitsWithin(SIGNAL_GAP_MS)) return;
    this.#signalGroup('SIGINT');
    if (await this.#exitsWithin(stepTimeoutMs)) return;
    this.#signalGroup('SIGKILL');
    await this.exited;
  }

  #exitsWithin(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void this.exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined || !this.running) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** Kills every ffmpeg still running, synchronously: for the gateway's last moments. */
  static killAll(): void {
    for (const p of live) p.#signalGroup('SIGKILL');
  }

  static get count(): number {
    return live.size;
  }
}
