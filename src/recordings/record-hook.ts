import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { monotonicMs } from '../core/clock.js';
import { trackSize } from '../core/tracked.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';

/** What a run of the hook may log of its output: lines, and bytes in all; the rest is counted, not logged. */
const OUTPUT_MAX_LINES = 50;
const OUTPUT_MAX_BYTES = 8192;
/** Hooks running at once: each a copy or an upload, which should not take the disk from the recordings. */
const HOOKS_AT_ONCE = 4;
/** Parts waiting for a hook at most: a bound for a hook that keeps timing out while parts keep finishing. */
const HOOK_QUEUE_LIMIT = 1000;
/** The gateway's environment variables a hook is given: what a program needs to run, no secret. */
const HOOK_ENVIRONMENT = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

export interface RecordHookSettings {
  /** An absolute path to an executable, run without a shell. */
  command: string;
  /** A run still going after this long (ms) is killed, with whatever it started in its process group. */
  timeoutMs: number;
  /** Runs at once; more wait their turn. */
  concurrency: number;
  /** Runs waiting at most; beyond, the oldest waiting is dropped. */
  queueLimit: number;
}

/** A finished part, as the hook is told of it. */
export interface HookedPart {
  /** Absolute. */
  path: string;
  stream: string;
  mediaSessionId: string;
  durationMs?: number;
}

interface Run {
  part: HookedPart;
  objectKey: string | undefined;
  /** Told when the run is over, however it ended (or was dropped). */
  over: () => void;
}

/**
 * `record_hook`: a command run for each part this node finished recording (Web Call Server's
 * `on_record_hook_script`), with its stream, the part's path and its push as arguments (never
 * through a shell: a name reaches it as one argument, whatever it holds) and as `RECORD_*`
 * environment variables. A few run at once and the others wait in a bounded queue; one that takes
 * longer than its timeout is killed with its process group. Its output is logged within a budget,
 * its end too; a hook that fails is the operator's to see in the log, never an error of the gateway.
 */
export class RecordHook {
  readonly #queue: Run[] = [];
  /** Each running child, with the promise of its end (its output read to the last byte). */
  readonly #running = new Map<ChildProcess, Promise<void>>();
  /** Runs dropped from a full queue, since the start. */
  #dropped = 0;
  #closed = false;

  /** Counts its queue and its children in /metrics (`tracked.ts`). */
  static #trackSizes(owner: RecordHook): void {
    trackSize('record_hook_queue', owner, (self) => self.#queue.length);
    trackSize('record_hook_running', owner, (self) => self.#running.size);
  }

  /** The hook the configuration sets, for parts in `dir` (`record_dir`); undefined when there is none. */
  static fromConfig(config: GatewayConfig, dir: string, log: Logger): RecordHook | undefined {
    if (!config.record_hook) return undefined;
    return new RecordHook(
      {
        command: config.record_hook,
        timeoutMs: config.record_hook_timeout_s * 1000,
        concurrency: HOOKS_AT_ONCE,
        queueLimit: HOOK_QUEUE_LIMIT,
      },
      dir,
      log.child({ component: 'record-hook' }),
    );
  }

  constructor(
    private readonly settings: RecordHookSettings,
    /** Where the parts are (`record_dir`, absolute). */
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    RecordHook.#trackSizes(this);
  }

  /** Follows this node's recordings: runs for each part finished. */
  follow(event: LifecycleEvent): void {
    if (event.type !== 'recording.finished') return;
    void this.run({
      path: join(this.dir, event.file),
      stream: event.stream,
      mediaSessionId: event.mediaSessionId,
      ...(event.durationMs === undefined ? {} : { durationMs: event.durationMs }),
    });
  }

  /**
   * Runs the hook for `part` now, or once a run ends when `concurrency` are running. `objectKey`:
   * where the part was stored besides (a fourth argument and `RECORD_OBJECT_KEY`).
   */
  run(part: HookedPart, objectKey?: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise<void>((over) => {
      this.#queue.push({ part, objectKey, over });
      if (this.#queue.length > this.settings.queueLimit) {
        const dropped = this.#queue.shift()!;
        this.#dropped++;
        dropped.over();
        this.log.warn(
          { file: dropped.part.path, queueLimit: this.settings.queueLimit },
          'record hook not run: too many parts waiting for it, the oldest is dropped',
        );
      }
      this.#next();
    });
  }

  /** What it is doing now: runs going and waiting, and those dropped from a full queue. */
  toJSON(): { running: number; waiting: number; dropped: number } {
    return { running: this.#running.size, waiting: this.#queue.length, dropped: this.#dropped };
  }

  /** Drops the runs waiting, kills those running (their process groups) and resolves once they have ended. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#queue.length)
        this.log.warn(
          { dropped: this.#queue.length },
          'record hook not run for parts still waiting: the gateway stops',
        );
      for (const run of this.#queue.splice(0)) run.over();
      for (const child of this.#running.keys()) killGroup(child);
    }
    await Promise.all(this.#running.values());
  }

  #next(): void {
    while (!this.#closed && this.#running.size < this.settings.concurrency && this.#queue.length) {
      this.#start(this.#queue.shift()!);
    }
  }

  #start({ part, objectKey, over }: Run): void {
    // As Web Call Server's `on_record_hook_script`: the stream's name, then the file's path; then ours.
    const args = [part.stream, part.path, part.mediaSessionId, ...(objectKey === undefined ? [] : [objectKey])];
    // Not the gateway's environment, which holds its secrets (`GATEWAY_*`, the store's keys): only
    // what a program needs to run, and the part.
    const env: NodeJS.ProcessEnv = {
      ...Object.fromEntries(
        HOOK_ENVIRONMENT.flatMap((name) => (name in process.env ? [[name, process.env[name]]] : [])),
      ),
      RECORD_FILE: part.path,
      RECORD_STREAM: part.stream,
      RECORD_MEDIA_SESSION_ID: part.mediaSessionId,
      RECORD_DURATION_MS: part.durationMs === undefined ? '' : String(part.durationMs),
      ...(objectKey === undefined ? {} : { RECORD_OBJECT_KEY: objectKey }),
    };
    const log = this.log.child({ file: part.path });
    let child: ChildProcess;
    try {
      // Its own process group, so that a timeout kills whatever it started too.
      child = spawn(this.settings.command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (error) {
      log.error({ reason: (error as Error).message }, 'record hook could not start');
      return over();
    }
    const startedMs = monotonicMs();
    const output = new OutputBudget(log);
    let startError: NodeJS.ErrnoException | undefined;
    let timedOut = false;
    // A child that could not start says so here (ENOENT, EACCES…); one already gone may too, at a kill.
    child.on('error', (error: NodeJS.ErrnoException) => {
      startError ??= error;
    });
    readLines(child.stdout!, (line) => output.take('stdout', line));
    readLines(child.stderr!, (line) => output.take('stderr', line));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
      // A process it left behind in a group of its own may still hold its output open.
      child.stdout?.destroy();
      child.stderr?.destroy();
    }, this.settings.timeoutMs);
    const ended = new Promise<void>((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        const tookMs = Math.round(monotonicMs() - startedMs);
        const left = output.left();
        const about = { code, signal, tookMs, ...(left ? { outputLinesLeftOut: left } : {}) };
        if (startError && child.pid === undefined)
          log.error({ reason: startError.code ?? startError.message }, 'record hook could not start');
        else if (timedOut)
          log.warn({ ...about, timeoutMs: this.settings.timeoutMs }, 'record hook timed out and was killed');
        else if (this.#closed && signal === 'SIGKILL') log.warn(about, 'record hook killed: the gateway stops');
        else if (code !== 0) log.warn(about, 'record hook failed');
        else log.info(about, 'record hook done');
        this.#running.delete(child);
        over();
        resolve();
        this.#next();
      });
    });
    this.#running.set(child, ended);
  }
}

/**
 * Kills `child`'s process group: the hook and whatever it started, which may outlive it (the group
 * stays while a member does, and its id is not given to another process meanwhile).
 */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // the hook leads its own process group
  } catch {
    // Ended meanwhile.
  }
}

/**
 * Calls `onLine` for each line of `stream`; a line longer than the output budget comes in pieces,
 * so that a hook writing without a newline holds no more than that much here.
 */
function readLines(stream: Readable, onLine: (line: string) => void): void {
  let carry = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (carry + chunk).split('\n');
    carry = lines.pop()!;
    for (const line of lines) onLine(line);
    while (carry.length > OUTPUT_MAX_BYTES) {
      onLine(carry.slice(0, OUTPUT_MAX_BYTES));
      carry = carry.slice(OUTPUT_MAX_BYTES);
    }
  });
  stream.on('end', () => carry && onLine(carry));
  stream.on('error', () => {}); // destroyed at a timeout
}

/** Logs a run's output lines up to `OUTPUT_MAX_LINES` and `OUTPUT_MAX_BYTES`, and counts those beyond. */
class OutputBudget {
  #lines = 0;
  #bytes = 0;
  #left = 0;

  constructor(private readonly log: Logger) {}

  take(stream: 'stdout' | 'stderr', line: string): void {
    if (this.#lines >= OUTPUT_MAX_LINES || this.#bytes >= OUTPUT_MAX_BYTES) {
      this.#left++;
      return;
    }
    const room = OUTPUT_MAX_BYTES - this.#bytes;
    const logged = Buffer.byteLength(line) > room ? `${Buffer.from(line).subarray(0, room).toString()}…` : line;
    this.#lines++;
    this.#bytes += Math.min(Buffer.byteLength(line), room);
    this.log.info({ stream, line: logged }, 'record hook output');
  }

  /** Lines not logged. */
  left(): number {
    return this.#left;
  }
}
