import type { OnReadOpts, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { GatewayError } from '../core/errors.js';
import { TypedEmitter, type ListenerErrorHandler } from '../core/events.js';
import { killGroup, type SpawnerConnection } from './spawner-client.js';
import type { Slot } from './spawner-wire.js';

/** How a short-lived ffmpeg's arguments begin: no banner, no keyboard, errors alone in its log, reading only `protocols`. */
export function ffmpegQuietly(protocols: string): string[] {
  return ['-hide_banner', '-nostdin', '-loglevel', 'error', '-protocol_whitelist', protocols];
}

/**
 * ffmpeg's file descriptor 3: `'video'`, a pipe for `writeVideo` (its `pipe:3`), with a second
 * output pipe as its descriptor 4 (`pipe:4`, read as `audioOutput`); or a descriptor of
 * the gateway's, opened again for it by the spawner (ffmpeg reads it as `/proc/self/fd/3`: a folder it
 * writes into, a file of secret options). The caller closes its own copy once ffmpeg has started.
 */
export type Fd3 = 'video' | number;

export type FfmpegEvents = {
  /** A line of ffmpeg's log. */
  line: [line: string];
  /** Bytes ffmpeg wrote to its standard output (unless they are read into a buffer of the caller's). */
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
 * One ffmpeg child in its own process group, started by the spawner (`spawner.ts`: no thread of the
 * gateway forks) through `FfmpegSupervisor`. Its standard input, output and error, and its pipes 3
 * and 4, are stream sockets whose other end it holds: what is written before it has started waits
 * here, in order. `stop()` escalates end of stdin → SIGINT twice → SIGKILL on the group. An ffmpeg
 * reading PCM from stdin ends at its end; after its start-up a single SIGINT only asks the main loop
 * to end: the second one also interrupts a blocking read, which is what ends an ffmpeg whose input
 * has gone quiet.
 */
export class FfmpegProcess extends TypedEmitter<FfmpegEvents> {
  #stdin: Socket | undefined;
  /** File descriptor 3 of ffmpeg (`pipe:3`): its video input, when it has one. */
  #video: Socket | undefined;
  #stdout: Socket | undefined;
  /** Every descriptor's connection, once made. */
  #sockets = new Map<number, Socket>();
  readonly #hasVideo: boolean;
  readonly exited: Promise<void>;
  /** Resolves once it has exited and its output has been read to the end (`exited` can come first). */
  readonly closed: Promise<void>;
  /** Resolves with its PID once it runs, or undefined when it could not be started. */
  readonly started: Promise<number | undefined>;
  #pid: number | undefined;
  #exitCode: number | null | undefined;
  #stopping: Promise<void> | undefined;
  /** What was asked of its inputs before it started, in order; undefined once it has. */
  #waiting: (() => void)[] | undefined = [];
  #waitingBytes = { input: 0, video: 0 };
  #outputPaused = false;
  #killed = false;
  /** Its input was ended (`endInput`, `stop`): nothing more is written to it. */
  #inputEnded = false;

  /**
   * `onListenerError` hears of a listener that threw (isolated from the others and from this
   * process); `fd3` gives ffmpeg a fourth descriptor; `reader`, a buffer its standard output is read
   * into, again and again (then given to the reader's callback instead of as `output` events: for an
   * output of raw pictures, which would allocate a buffer for each read). Arguments Node refuses to
   * pass (a NUL in one) are a `GatewayError` whose message holds none of them: an argument may be a secret.
   */
  constructor(
    spawner: SpawnerConnection,
    binary: string,
    args: readonly string[],
    onListenerError?: ListenerErrorHandler,
    fd3?: Fd3,
    reader?: OnReadOpts,
  ) {
    super(onListenerError);
    if ([binary, ...args].some((arg) => typeof arg !== 'string' || arg.includes('\0'))) {
      throw new GatewayError('internal', 'ffmpeg could not be started (spawn refused its arguments)');
    }
    this.#hasVideo = fd3 === 'video';
    const slots: Slot[] = ['socket', 'socket', 'socket'];
    if (fd3 === 'video') slots.push('socket', 'socket');
    else if (fd3 !== undefined) slots.push({ path: `/proc/${process.pid}/fd/${fd3}` });
    let resolveStarted!: (pid: number | undefined) => void;
    this.started = new Promise((resolve) => (resolveStarted = resolve));
    let resolveOutputs!: (value: Promise<unknown>) => void;
    const outputs = new Promise((resolve) => (resolveOutputs = resolve));
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.#exitCode !== undefined) return;
        this.#exitCode = code;
        this.#waiting = undefined;
        this.safeEmit('exit', code, signal);
        resolve();
      };
      const readers = new Map(reader ? [[1, reader]] : []);
      spawner.launch({
        binary,
        args,
        slots,
        readers,
        events: {
          connected: (sockets) => resolveOutputs(this.#connected(sockets, reader !== undefined)),
          started: (pid) => {
            this.#pid = pid;
            resolveStarted(pid);
            const waiting = this.#waiting ?? [];
            this.#waiting = undefined;
            this.#waitingBytes = { input: 0, video: 0 };
            for (const step of waiting) step();
            if (this.#killed) killGroup(pid);
          },
          failed: (code) => {
            // The code only: Node's message may quote the arguments.
            this.safeEmit('line', `failed to start ${binary}: ${code}`);
            for (const socket of this.#sockets.values()) socket.destroy();
            resolveOutputs(Promise.resolve());
            resolveStarted(undefined);
            finish(SPAWN_FAILED, null);
          },
          exited: (code, signal) => {
            resolveStarted(undefined);
            finish(code, signal);
          },
        },
      });
    });
    // Its output sockets end once it has gone, the last holder of their other ends, and all it wrote was read.
    this.closed = Promise.all([this.exited, outputs]).then(() => undefined);
  }

  /** Its descriptors' connections are made: readers set, inputs kept until it has started. */
  #connected(sockets: Map<number, Socket>, read: boolean): Promise<unknown> {
    this.#sockets = sockets;
    this.#stdin = sockets.get(0);
    this.#stdout = sockets.get(1)!;
    const stderr = sockets.get(2)!;
    this.#video = sockets.get(3);
    const second = this.#hasVideo ? sockets.get(4) : undefined;
    createInterface({ input: stderr }).on('line', (line) => this.safeEmit('line', line));
    if (!read) this.#stdout.on('data', (data: Buffer) => this.safeEmit('output', data));
    if (this.#outputPaused) this.#stdout.pause();
    second?.on('data', (data: Buffer) => this.safeEmit('audioOutput', data));
    const outputs = second ? [this.#stdout, stderr, second] : [this.#stdout, stderr];
    return Promise.all(outputs.map((socket) => new Promise((resolve) => socket.once('close', resolve))));
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  /** True from its start (while it is being started, too) until it has exited. */
  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** The exit code once it has exited (null when a signal ended it), else undefined. */
  get exitCode(): number | null | undefined {
    return this.#exitCode;
  }

  /** Runs `step` once it has started (now, when it has). */
  #once(step: () => void): void {
    if (this.#waiting) this.#waiting.push(step);
    else step();
  }

  /** Writes to ffmpeg's standard input (its raw PCM input); false once it is gone. */
  write(data: Buffer): boolean {
    if (!this.running || this.#inputEnded) return false;
    if (this.#waiting) {
      this.#waitingBytes.input += data.length;
      this.#waiting.push(() => this.#stdin?.write(data));
    } else if (this.#stdin?.writableEnded === false) this.#stdin.write(data);
    else return false;
    return true;
  }

  /**
   * Writes to ffmpeg's video input (`pipe:3`); false once it is gone or when it has none. `written`
   * is called once the pipe no longer holds `data` (it may be reused).
   */
  writeVideo(data: Buffer, written?: () => void): boolean {
    if (!this.#hasVideo || !this.running || this.#inputEnded) return false;
    if (this.#waiting) {
      this.#waitingBytes.video += data.length;
      this.#waiting.push(() => this.#video?.write(data, written));
    } else if (this.#video?.writableEnded === false) this.#video.write(data, written);
    else return false;
    return true;
  }

  /** Bytes written to the video input that ffmpeg has not read yet. */
  get videoBacklog(): number {
    return this.#waitingBytes.video + (this.#video?.writableLength ?? 0);
  }

  /** Bytes written to standard input that ffmpeg has not read yet. */
  get inputBacklog(): number {
    return this.#waitingBytes.input + (this.#stdin?.writableLength ?? 0);
  }

  /** Stops reading ffmpeg's output until `resumeOutput`: ffmpeg blocks once the socket is full. */
  pauseOutput(): void {
    this.#outputPaused = true;
    this.#stdout?.pause();
  }

  resumeOutput(): void {
    this.#outputPaused = false;
    this.#stdout?.resume();
  }

  /** Ends its input: an ffmpeg reading a file from stdin finishes its work and exits. */
  endInput(): void {
    this.#inputEnded = true;
    this.#once(() => {
      this.#video?.end();
      this.#stdin?.end();
    });
  }

  stop(stepTimeoutMs: number): Promise<void> {
    this.#stopping ??= this.#escalate(stepTimeoutMs);
    return this.#stopping;
  }

  async #escalate(stepTimeoutMs: number): Promise<void> {
    if (!this.running) return this.exited;
    if ((await this.started) === undefined) return this.exited;
    this.#inputEnded = true;
    this.#video?.end();
    this.#stdin?.end(); // end of input: ffmpeg flushes its encoders and exits
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
    this.#killed = true;
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
    if (this.#pid !== undefined && this.running) killGroup(this.#pid, signal);
  }
}
