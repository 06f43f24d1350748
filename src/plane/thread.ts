import { trackSize } from '../core/tracked.js';
import { MessagePort, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { unavailable } from '../core/errors.js';
import { PUBLISHER_SLOTS, Slots, PUSH_SLOTS } from '../core/slots.js';
import type { ChildRecord } from '../ffmpeg/supervisor.js';
import type { PushChange } from '../pushes/changes.js';
import { isActive, type PushState } from '../pushes/states.js';
import type { LifecycleEvent } from './lifecycle.js';
import { checkResult, type ArgsOf, type HolderMethod, type ResultOf } from './methods.js';
import type { Negotiated, PlaneStatus, PublishHandlers, ThreadLoad } from './plane.js';
import type { WorkerData } from './worker.js';
import { fromWire, type Call, type WorkerMessage } from './wire.js';

/** Starts the worker thread named `name` that runs the streams of `data`. */
export type WorkerStarter = (data: WorkerData, name: string) => Worker;

/** How long a thread closed on purpose is given to end its streams before it is terminated. */
const CLOSE_TIMEOUT_MS = 8000;

/** A mixer running in a thread, as the plane started it: the stream it publishes there, and its inputs (any thread's). */
export interface HeldMixer {
  stream: string;
  inputs: Set<string>;
}

/** What a thread tells the plane it belongs to. */
export interface ThreadOwner {
  /** A push of the thread changed; the thread holds its session until it stops. */
  pushChanged(thread: WorkerThread, change: PushChange): void;
  /** Something happened to a stream, push, viewer or mixer of the thread (a mixer that ended is forgotten first). */
  happened(event: LifecycleEvent): void;
  /**
   * The thread stopped unexpectedly, once: everything it held is forgotten, its publishes told
   * closed (lost), its ffmpeg killed and its slots given back already.
   */
  died(thread: WorkerThread, reason: string): void;
}

export interface ThreadOptions {
  start: WorkerStarter;
  data: WorkerData;
  owner: ThreadOwner;
  /** Hears of every ffmpeg of the thread, for the process's last moments (`ChildRecord`). */
  childRecord?: ChildRecord;
  /** Where a listener's exception goes. */
  log: Logger;
}

/**
 * One worker thread, seen from the main thread: the calls to it, what it last told of its load,
 * and everything it holds: its streams, the sessions of its pushes, its mixers, the publishes
 * started in it and its ffmpeg. Each is forgotten on its own end, as the thread tells of it; when
 * the thread dies, all of them are at once, and the plane is told once (`ThreadOwner.died`).
 */
export class WorkerThread {
  readonly worker: Worker;
  readonly #calls = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  #next = 0;
  #stopped: string | undefined;
  /** Closed on purpose (the plane closes): its end is no death. */
  #closing: Promise<void> | undefined;
  load: ThreadLoad;
  pushes: PlaneStatus['pushes'] = {};
  /** The streams it holds, each with the calls on their way that may place it here. */
  readonly #streams = new Map<string, { pending: number }>();
  /** The pushes it told of that have not stopped. */
  readonly #sessions = new Set<string>();
  /** Its mixers, by URI. */
  readonly #mixers = new Map<string, HeldMixer>();
  /** What each publish started here hears, by publisher id. */
  readonly #publishes = new Map<string, PublishHandlers>();
  /** Its ffmpeg processes. */
  readonly #children = new Set<number>();
  readonly #owner: ThreadOwner;
  readonly #slots: SharedArrayBuffer;
  readonly #childRecord: ChildRecord | undefined;
  readonly #log: Logger;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: WorkerThread): void {
    trackSize('plane_calls', owner, (self) => self.#calls.size);
    trackSize('plane_streams', owner, (self) => self.#streams.size);
    trackSize('plane_sessions', owner, (self) => self.#sessions.size);
    trackSize('plane_mixers', owner, (self) => self.#mixers.size);
    trackSize('plane_mixer_inputs', owner, (self) =>
      [...self.#mixers.values()].reduce((sum, mixer) => sum + mixer.inputs.size, 0),
    );
    trackSize('plane_publishes', owner, (self) => self.#publishes.size);
    trackSize('plane_children', owner, (self) => self.#children.size);
  }

  constructor(
    readonly index: number,
    options: ThreadOptions,
  ) {
    WorkerThread.#trackSizes(this);
    this.#owner = options.owner;
    this.#slots = options.data.slots;
    this.#childRecord = options.childRecord;
    this.#log = options.log;
    this.load = {
      thread: String(index),
      eventLoopDelayMs: 0,
      eventLoopDelayMaxMs: 0,
      eventLoopUtilization: 0,
      machineCpuPercent: 0,
      publishers: 0,
    };
    this.worker = options.start(options.data, `media-${index}`);
    this.worker.on('message', (message: WorkerMessage) => this.#onMessage(message));
    this.worker.on('error', (error) => this.#stop(`failed: ${error.message}`));
    this.worker.on('exit', (code) => this.#stop(`exited with ${code}`));
  }

  get alive(): boolean {
    return this.#stopped === undefined;
  }

  /** Calls `method` in the worker; what comes back is checked against `HOLDER_METHODS`. */
  async call<M extends HolderMethod>(method: M, ...args: ArgsOf<M>): Promise<ResultOf<M>> {
    if (this.#stopped) throw unavailable(`media worker ${this.index} ${this.#stopped}`);
    const id = this.#next++;
    const value = await new Promise<unknown>((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      // A port among the arguments (a relay between two workers) is handed over, not copied.
      const ports = (args as unknown[]).filter((arg): arg is MessagePort => arg instanceof MessagePort);
      this.worker.postMessage({ kind: 'call', id, method, args } as Call, ports);
    });
    return checkResult(method, value);
  }

  /** Starts a publish here; `handlers` hear of it until it closes. */
  async publish(name: string, offer: string, handlers: PublishHandlers, clientAddress?: string): Promise<Negotiated> {
    const published = await this.call('publish', name, offer, clientAddress);
    this.#publishes.set(published.id, handlers);
    return published;
  }

  /** Runs `call` with stream `name` held here, as it is while a call that may place it here is on its way. */
  async holding<T>(name: string, call: () => Promise<T>): Promise<T> {
    let stream = this.#streams.get(name);
    if (!stream) this.#streams.set(name, (stream = { pending: 0 }));
    stream.pending++;
    try {
      return await call();
    } finally {
      stream.pending--;
    }
  }

  holds(stream: string): boolean {
    return this.#streams.has(stream);
  }

  /** Stream `name` is held by another thread now. */
  release(name: string): void {
    this.#streams.delete(name);
  }

  /** How many streams it holds: what a new one is placed by. */
  get streamCount(): number {
    return this.#streams.size;
  }

  hasSession(mediaSessionId: string): boolean {
    return this.#sessions.has(mediaSessionId);
  }

  /** The push `mediaSessionId` runs in another thread now. */
  releaseSession(mediaSessionId: string): void {
    this.#sessions.delete(mediaSessionId);
  }

  mixer(uri: string): HeldMixer | undefined {
    return this.#mixers.get(uri);
  }

  mixers(): IterableIterator<[string, HeldMixer]> {
    return this.#mixers.entries();
  }

  /** How many mixers run here: what a new mixer is placed by first. */
  get mixerCount(): number {
    return this.#mixers.size;
  }

  /** The mixer `uri` runs here, publishing `stream`; the inputs of one running already stay. */
  mixerStarted(uri: string, stream: string): void {
    const mixer = this.#mixers.get(uri);
    if (mixer) mixer.stream = stream;
    else this.#mixers.set(uri, { stream, inputs: new Set() });
  }

  /** The mixer `uri` ended here: its inputs go with it. */
  mixerEnded(uri: string): void {
    this.#mixers.delete(uri);
  }

  /** Kills its ffmpeg at once: the process's last moments. */
  killChildren(): void {
    for (const pid of this.#children) killGroup(pid);
  }

  /**
   * Ends its streams (for `CLOSE_TIMEOUT_MS` at most), then the thread. What it held is not told
   * lost, and its ffmpeg stay known to `killChildren` until the process ends. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const timeout = new Promise((done) => setTimeout(done, CLOSE_TIMEOUT_MS).unref());
      await Promise.race([this.call('close').catch(() => undefined), timeout]);
      await this.worker.terminate();
    })();
    return this.#closing;
  }

  #onMessage(message: WorkerMessage): void {
    switch (message.kind) {
      case 'reply': {
        const call = this.#calls.get(message.id);
        this.#calls.delete(message.id);
        if (message.error) call?.reject(fromWire(message.error));
        else call?.resolve(message.value);
        return;
      }
      case 'publishing':
        return this.#tell(() => this.#publishes.get(message.publisherId)?.publishing?.());
      case 'closed':
        return this.#closed(message.publisherId, message.reason, message.lost);
      case 'push':
        // A push's last change (stopped) may come after its removal: it is not routed to again.
        if (message.change.state !== 'stopped') this.#sessions.add(message.change.mediaSessionId);
        else this.#sessions.delete(message.change.mediaSessionId);
        return this.#owner.pushChanged(this, message.change);
      case 'event':
        if (message.event.type === 'mixer.ended') this.mixerEnded(message.event.mixer);
        return this.#owner.happened(message.event);
      case 'removed':
        this.#sessions.delete(message.mediaSessionId);
        return;
      case 'idle':
        if (this.#streams.get(message.stream)?.pending === 0) this.#streams.delete(message.stream);
        return;
      case 'status':
        this.load = message.load;
        this.pushes = message.pushes;
        return;
      case 'child':
        if (message.op === 'add') {
          this.#children.add(message.pid);
          this.#childRecord?.add(message.pid);
        } else {
          this.#children.delete(message.pid);
          this.#childRecord?.remove(message.pid);
        }
        return;
    }
  }

  #closed(publisherId: string, reason: string, lost: boolean): void {
    const handlers = this.#publishes.get(publisherId);
    this.#publishes.delete(publisherId);
    this.#tell(() => handlers?.closed?.(reason, lost));
  }

  /** A listener's exception stays with it. */
  #tell(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      this.#log.error({ err: error }, 'plane listener failed');
    }
  }

  #stop(reason: string): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    for (const call of this.#calls.values()) call.reject(unavailable(`media worker ${this.index} ${reason}`));
    this.#calls.clear();
    if (this.#closing) return;
    // Died: what it held is lost with it.
    this.#streams.clear();
    this.#sessions.clear();
    this.#mixers.clear();
    for (const id of [...this.#publishes.keys()]) this.#closed(id, `media worker ${reason}`, true);
    // The slots its streams held are given back, as it last told of them.
    const publishers = new Slots(this.#slots, PUBLISHER_SLOTS);
    const pushes = new Slots(this.#slots, PUSH_SLOTS);
    for (let i = 0; i < this.load.publishers; i++) publishers.give();
    for (const [state, count] of Object.entries(this.pushes) as [PushState, number][]) {
      if (isActive(state)) for (let i = 0; i < count; i++) pushes.give();
    }
    for (const pid of this.#children) {
      killGroup(pid); // the worker's ffmpeg would otherwise run on
      this.#childRecord?.remove(pid);
    }
    this.#children.clear();
    this.#owner.died(this, reason);
  }
}

/** Kills an ffmpeg and its process group (each ffmpeg leads its own). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Ended already.
  }
}
