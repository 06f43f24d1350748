import { trackSize } from '../core/tracked.js';
import type { ListenerErrorHandler } from '../core/events.js';
import { FfmpegProcess, type Fd3 } from './ffmpeg-process.js';
import { ownSpawner, type SpawnerConnection } from './spawner-client.js';

/** Where the PIDs of running children are recorded, so that a killed gateway's can be found (`ChildRegistry`). */
export interface ChildRecord {
  add(pid: number): void;
  remove(pid: number): void;
}

/**
 * Starts every ffmpeg of one place (the main thread, or one worker thread: each has its own), through
 * the gateway's spawner (or, without one, a spawner of this thread's own), and knows which still
 * run: each is recorded (when a record is given, the gateway's one file shared by
 * all places) from its start to its exit, and `killAll` ends them all at once in the gateway's last
 * moments.
 */
export class FfmpegSupervisor {
  readonly #live = new Set<FfmpegProcess>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: FfmpegSupervisor): void {
    trackSize('ffmpeg_live', owner, (self) => self.#live.size);
  }

  constructor(
    private readonly record?: ChildRecord,
    private readonly spawner: SpawnerConnection = ownSpawner(),
  ) {
    FfmpegSupervisor.#trackSizes(this);
  }

  /** Starts ffmpeg, with a descriptor 3 when `fd3` says which (`Fd3`). */
  spawn(binary: string, args: readonly string[], onListenerError?: ListenerErrorHandler, fd3?: Fd3): FfmpegProcess {
    return this.#track(new FfmpegProcess(this.spawner, binary, args, onListenerError, fd3));
  }

  /**
   * Starts ffmpeg with its standard output read into `buffer`, again and again, each read given to
   * `onData` (a view of `buffer`, valid until it returns) instead of as `output` events: for an
   * output of raw pictures (a mixer's input decoders). A stream allocates 64 KB for each read: at
   * the 40 MB/s two 720p inputs make, those allocations were external memory enough for V8 to
   * collect the whole heap about every 0.7 s.
   */
  spawnReading(
    binary: string,
    args: readonly string[],
    onListenerError: ListenerErrorHandler,
    buffer: Buffer,
    onData: (data: Buffer) => void,
  ): FfmpegProcess {
    const callback = (bytes: number): boolean => {
      try {
        onData(buffer.subarray(0, bytes));
      } catch (error) {
        onListenerError('output', error);
      }
      return true;
    };
    return this.#track(new FfmpegProcess(this.spawner, binary, args, onListenerError, undefined, { buffer, callback }));
  }

  #track(child: FfmpegProcess): FfmpegProcess {
    this.#live.add(child);
    void child.started.then((pid) => {
      if (pid === undefined) return;
      this.record?.add(pid);
      void child.exited.then(() => this.record?.remove(pid));
    });
    void child.exited.then(() => this.#live.delete(child));
    return child;
  }

  /** ffmpeg processes running. */
  get count(): number {
    return this.#live.size;
  }

  /** Kills every ffmpeg still running; the signals are sent before it returns. */
  killAll(): void {
    for (const child of this.#live) void child.kill();
  }
}
