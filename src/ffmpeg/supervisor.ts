import { trackSize } from '../tracked.js';
import type { ListenerErrorHandler } from '../events.js';
import { FfmpegProcess, type Fd3 } from './ffmpeg-process.js';
import { OutputSockets } from './output-sockets.js';

/** Where the PIDs of running children are recorded, so that a killed gateway's can be found (`ChildRegistry`). */
export interface ChildRecord {
  add(pid: number): void;
  remove(pid: number): void;
}

/**
 * Starts every ffmpeg of one place (the main thread, or one worker thread: each has its own) and
 * knows which still run: each is recorded (when a record is given, the gateway's one file shared by
 * all places) from its start to its exit, and `killAll` ends them all at once in the gateway's last
 * moments.
 */
export class FfmpegSupervisor {
  readonly #live = new Set<FfmpegProcess>();
  readonly #outputs = new OutputSockets();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: FfmpegSupervisor): void {
    trackSize('ffmpeg_live', owner, (self) => self.#live.size);
  }

  constructor(private readonly record?: ChildRecord) {
    FfmpegSupervisor.#trackSizes(this);
  }

  /** Starts ffmpeg, with a descriptor 3 when `fd3` says which (`Fd3`). */
  spawn(binary: string, args: readonly string[], onListenerError?: ListenerErrorHandler, fd3?: Fd3): FfmpegProcess {
    return this.#track(new FfmpegProcess(binary, args, onListenerError, fd3));
  }

  /**
   * Starts ffmpeg with its standard output read into `buffer`, again and again, each read given to
   * `onData` (a view of `buffer`, valid until it returns) instead of as `output` events: for an
   * output of raw pictures, which would allocate a buffer for each read (`OutputSockets`).
   */
  async spawnReading(
    binary: string,
    args: readonly string[],
    onListenerError: ListenerErrorHandler,
    buffer: Buffer,
    onData: (data: Buffer) => void,
  ): Promise<FfmpegProcess> {
    const { ours, theirs } = await this.#outputs.pair(buffer, onData, (error) => onListenerError('output', error));
    try {
      // `ours` ends by itself once ffmpeg, the last holder of `theirs`, has gone and all it wrote was read.
      return this.#track(new FfmpegProcess(binary, args, onListenerError, undefined, theirs));
    } catch (error) {
      ours.destroy();
      throw error;
    } finally {
      theirs.destroy(); // ffmpeg has its own copy
    }
  }

  #track(child: FfmpegProcess): FfmpegProcess {
    const pid = child.pid;
    this.#live.add(child);
    if (pid !== undefined) this.record?.add(pid);
    void child.exited.then(() => {
      this.#live.delete(child);
      if (pid !== undefined) this.record?.remove(pid);
    });
    return child;
  }

  /** ffmpeg processes running. */
  get count(): number {
    return this.#live.size;
  }

  /** Kills every ffmpeg still running; the signals are sent before it returns. */
  killAll(): void {
    this.#outputs.close();
    for (const child of this.#live) void child.kill();
  }
}
