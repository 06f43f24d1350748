import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { GatewayError } from '../errors.js';
import { TypedEmitter, type ListenerErrorHandler } from '../events.js';

/** How a short-lived ffmpeg's arguments begin: no banner, no keyboard, errors alone in its log, reading only `protocols`. */
export function ffmpegQuietly(protocols: string): string[] {
  return ['-hide_banner', '-nostdin', '-loglevel', 'error', '-protocol_whitelist', protocols];
}

/**
 * ffmpeg's file descriptor 3: `'video'`, a pipe for `writeVideo` (its `pipe:3`), with a second
 * output pipe as its descriptor 4 (`pipe:4`, read as `audioOutput`); or a descriptor of
 * the gateway's handed over as it is (ffmpeg reads it as `/proc/self/fd/3`: a folder it writes into,
 * a file of secret options). The caller closes its own copy once ffmpeg has started.
 */
export type Fd3 = 'video' | number;

export type FfmpegEvents = {
  /** A line of ffmpeg's log. */
  line: [line: string];
  /** Bytes ffmpeg wrote to its standard output (unless it was given a socket for it). */
  output: [data: Buffer];
  /** Bytes ffmpeg wrote to its descriptor 4 (`pipe:4`), which it has with a video input. */
  audioOutput: [data: Buffer];
  exit: [code: number | null, signal: NodeJS.Signals | null];
};

/** How long the end of standard input gets before signals (ffmpeg with an RTP input ignores it). */
const QUIT_GRACE_MS = 300;
/** Gap between the two SIGINTs, so the kernel delivers two signals rather than merging them. */
const SIGNAL_GAP_MS = 100;

/** The exit code reported for a binary that could not be started at all (as a shell reports it). */
const SPAWN_FAILED = 127;

/**
 * One ffmpeg child in its own process group, started through `FfmpegSupervisor`. `stop()` escalates
 * end of stdin → SIGINT twice → SIGKILL on the group. An ffmpeg reading PCM from stdin ends at its end; after its start-up a
 * single SIGINT only asks the main loop to end: the second one also interrupts a blocking read,
 * which is what ends an ffmpeg whose input has gone quiet.
 */
export class FfmpegProcess extends TypedEmitter<FfmpegEvents> {
  readonly #child: ChildProcessByStdio<Writable, Readable | null, Readable>;
  /** File descriptor 3 of ffmpeg (`pipe:3`): its video input, when it has one. */
  readonly #video: Writable | undefined;
  readonly exited: Promise<void>;
  /** Resolves once it has exited and its output has been read to the end (`exited` can come first). */
  readonly closed: Promise<void>;
  #exitCode: number | null | undefined;
  #stopping: Promise<void> | undefined;

  /**
   * `onListenerError` hears of a listener that threw (isolated from the others and from this
   * process); `fd3` gives ffmpeg a fourth descriptor; `stdout`, a socket of the caller's for its
   * standard output (which is then not read here). Arguments Node refuses to pass (a NUL in one)
   * are a `GatewayError` whose message holds none of them: an argument may be a secret.
   */
  constructor(
    binary: string,
    args: readonly string[],
    onListenerError?: ListenerErrorHandler,
    fd3?: Fd3,
    stdout?: Socket,
  ) {
    super(onListenerError);
    const extra = fd3 === undefined ? [] : fd3 === 'video' ? (['pipe', 'pipe'] as const) : [fd3];
    try {
      this.#child = spawn(binary, args, {
        stdio: ['pipe', stdout ?? 'pipe', 'pipe', ...extra],
        detached: true,
      }) as ChildProcessByStdio<Writable, Readable | null, Readable>;
    } catch (error) {
      throw new GatewayError(
        'internal',
        `ffmpeg could not be started (${(error as NodeJS.ErrnoException).code ?? 'spawn refused its arguments'})`,
      );
    }
    this.#video = fd3 === 'video' ? (this.#child.stdio[3] as Writable) : undefined;
    this.#video?.on('error', () => {}); // EPIPE once ffmpeg is gone
    const pid = this.#child.pid;
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.#exitCode !== undefined) return;
        this.#exitCode = code;
        this.safeEmit('exit', code, signal);
        resolve();
      };
      this.#child.once('exit', finish);
      // A binary that cannot be started gets 'error' and no 'exit': it has ended all the same.
      this.#child.once('error', (error) => {
        // The code only: Node's message may quote the arguments.
        this.safeEmit('line', `failed to start ${binary}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
        if (pid === undefined) finish(SPAWN_FAILED, null);
      });
    });
    // 'close' comes after 'exit' and after standard output ended; a child that never started has no 'close'.
    this.closed = Promise.all([
      this.exited,
      new Promise<void>((resolve) => {
        this.#child.once('close', () => resolve());
        this.#child.once('error', () => pid === undefined && resolve());
      }),
    ]).then(() => undefined);
    this.#child.stdin.on('error', () => {}); // EPIPE once ffmpeg is gone
    createInterface({ input: this.#child.stderr }).on('line', (line) => this.safeEmit('line', line));
    this.#child.stdout?.on('data', (data: Buffer) => this.safeEmit('output', data));
    if (fd3 === 'video') {
      const second = this.#child.stdio[4] as Readable;
      second.on('error', () => {});
      second.on('data', (data: Buffer) => this.safeEmit('audioOutput', data));
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#exitCode === undefined && this.#child.pid !== undefined;
  }

  /** The exit code once it has exited (null when a signal ended it), else undefined. */
  get exitCode(): number | null | undefined {
    return this.#exitCode;
  }

  /** Writes to ffmpeg's standard input (its raw PCM input); false once it is gone. */
  write(data: Buffer): boolean {
    if (!this.running || this.#child.stdin.writableEnded) return false;
    this.#child.stdin.write(data);
    return true;
  }

  /**
   * Writes to ffmpeg's video input (`pipe:3`); false once it is gone or when it has none. `written`
   * is called once the pipe no longer holds `data` (it may be reused).
   */
  writeVideo(data: Buffer, written?: () => void): boolean {
    const video = this.#video;
    if (!video || !this.running || video.writableEnded) return false;
    video.write(data, written);
    return true;
  }

  /** Bytes written to the video input that ffmpeg has not read yet. */
  get videoBacklog(): number {
    return this.#video?.writableLength ?? 0;
  }

  /** Bytes written to standard input that ffmpeg has not read yet. */
  get inputBacklog(): number {
    return this.#child.stdin.writableLength;
  }

  /** Stops reading ffmpeg's output until `resumeOutput`: ffmpeg blocks once the pipe is full. */
  pauseOutput(): void {
    this.#child.stdout?.pause();
  }

  resumeOutput(): void {
    this.#child.stdout?.resume();
  }

  /** Ends its input: an ffmpeg reading a file from stdin finishes its work and exits. */
  endInput(): void {
    this.#video?.end();
    this.#child.stdin.end();
  }

  stop(stepTimeoutMs: number): Promise<void> {
    this.#stopping ??= this.#escalate(stepTimeoutMs);
    return this.#stopping;
  }

  async #escalate(stepTimeoutMs: number): Promise<void> {
    if (!this.running) return this.exited;
    this.#video?.end();
    this.#child.stdin.end(); // end of input: ffmpeg flushes its encoders and exits
    if (await this.#exitsWithin(Math.min(QUIT_GRACE_MS, stepTimeoutMs))) return;
    this.#signalGroup('SIGINT');
    if (await this.#exitsWithin(SIGNAL_GAP_MS)) return;
    this.#signalGroup('SIGINT');
    if (await this.#exitsWithin(stepTimeoutMs)) return;
    this.#signalGroup('SIGKILL');
    await this.exited;
  }

  /** Kills it at once (for a process whose output is no longer wanted); resolves when it has exited. */
  kill(): Promise<void> {
    this.#signalGroup('SIGKILL');
    return this.exited;
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
}
