import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { Slots } from '../core/slots.js';
import type { SpawnerAddress } from '../ffmpeg/spawner-wire.js';
import type { ChildRecord } from '../ffmpeg/supervisor.js';
import type { PushChange } from '../pushes/changes.js';
import type { LifecycleEvent } from './lifecycle.js';
import type { ArgsOf, ResultOf, RoutedMethod } from './methods.js';
import { MixerGraph } from './mixer-graph.js';
import type { MediaPlane, Negotiated, PlaneStatus, PublishHandlers } from './plane.js';
import { RoutedPlane } from './routed-plane.js';
import { WorkerThread, type WorkerStarter } from './thread.js';
import { ThreadRouter } from './thread-router.js';

/** The number of worker threads `config.workers` asks for: 'auto' is one per core. */
export function workerCount(config: Pick<GatewayConfig, 'workers'>): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** Each worker's share of the ICE port range is at least this many ports. */
const MIN_PORTS_PER_WORKER = 16;
/** How soon a worker that stopped unexpectedly is started again. */
const RESTART_DELAY_MS = 1000;

/** The built gateway's workers: `worker.js` beside this module. */
const builtWorker: WorkerStarter = (data, name) =>
  new Worker(new URL('./worker.js', import.meta.url), { workerData: data, name });

/**
 * Streams spread over worker threads, one per core by default, so that the gateway's WebRTC and
 * RTMP work uses every core. The main thread keeps HTTP, the SDK's WebSockets and the routing
 * (`ThreadRouter`): a stream goes to the worker with the fewest publishers that is not overloaded,
 * and stays there while the worker holds anything of it (a push waiting in standby for its
 * publisher to come back takes it back in the same worker); pushes are found by the worker that
 * told of them, mixers where they were started (`MixerGraph`). Each thread (`WorkerThread`) holds
 * what runs in it and forgets it all when it dies; the plane starts it again. Limits are counted
 * across workers in shared memory (`Slots`).
 */
export class WorkerPlane extends RoutedPlane implements MediaPlane {
  readonly #router = new ThreadRouter();
  readonly #mixers = new MixerGraph(this.#router);
  readonly #watchers = new Set<(change: PushChange) => void>();
  readonly #followers = new Set<(event: LifecycleEvent) => void>();
  readonly #slots = Slots.buffer();
  #closing: Promise<void> | undefined;

  constructor(
    private readonly config: GatewayConfig,
    private readonly log: Logger,
    /** `startWorker`: how a worker is started (the built one by default; the tests run the sources). */
    private readonly deps: { childRecord?: ChildRecord; startWorker?: WorkerStarter; spawner?: SpawnerAddress } = {},
  ) {
    super();
    const count = workerCount(config);
    const ports = config.webrtc_ice_port_max - config.webrtc_ice_port_min + 1;
    if (ports < count * MIN_PORTS_PER_WORKER) {
      throw new ConfigError(
        `webrtc_ice_port_min, webrtc_ice_port_max: ${ports} ports for ${count} workers (workers); ` +
          `each needs at least ${MIN_PORTS_PER_WORKER}`,
      );
    }
    for (let index = 0; index < count; index++) this.#router.set(this.#start(index));
  }

  /** Sends a routed call to the thread its route names (see `Route`). */
  protected route<M extends RoutedMethod>(method: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    return this.#router.route(method, args);
  }

  #start(index: number): WorkerThread {
    const count = workerCount(this.config);
    // Each worker gathers ICE on its own share of the port range.
    const span = Math.floor((this.config.webrtc_ice_port_max - this.config.webrtc_ice_port_min + 1) / count);
    const min = this.config.webrtc_ice_port_min + index * span;
    const config = { ...this.config, webrtc_ice_port_min: min, webrtc_ice_port_max: min + span - 1 };
    return new WorkerThread(index, {
      start: this.deps.startWorker ?? builtWorker,
      data: { config, index, slots: this.#slots, spawner: this.deps.spawner },
      childRecord: this.deps.childRecord,
      log: this.log,
      owner: {
        pushChanged: (thread, change) => {
          if (change.state !== 'stopped') this.#router.sessionAt(change.mediaSessionId, thread);
          for (const watcher of this.#watchers) this.#tell(() => watcher(change));
        },
        happened: (event) => {
          for (const follower of this.#followers) this.#tell(() => follower(event));
        },
        died: (thread, reason) => this.#died(thread, reason),
      },
    });
  }

  /** A listener's exception stays with it. */
  #tell(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      this.log.error({ err: error }, 'plane listener failed');
    }
  }

  /** `thread` died, having forgotten what it held: it is started again. */
  #died(thread: WorkerThread, reason: string): void {
    this.log.error({ worker: thread.index, reason }, 'media worker stopped: its streams are lost; starting it again');
    setTimeout(() => {
      if (!this.#closing) this.#router.set(this.#start(thread.index));
    }, RESTART_DELAY_MS).unref();
  }

  async publish(
    name: string,
    offer: string,
    handlers: PublishHandlers = {},
    clientAddress?: string,
  ): Promise<Negotiated> {
    const thread = this.#router.threadFor(name);
    const published = await this.#router.hold(name, thread, () => thread.publish(name, offer, handlers, clientAddress));
    this.#mixers.published(name);
    return published;
  }

  override mixerStartup(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    return this.#mixers.startup(request);
  }

  override mixerAdd(request: ArgsOf<'mixerAdd'>[0]): Promise<ResultOf<'mixerAdd'>> {
    return this.#mixers.add(request);
  }

  override async mixerRemove(...args: ArgsOf<'mixerRemove'>): Promise<ResultOf<'mixerRemove'>> {
    const removed = await super.mixerRemove(...args);
    this.#mixers.removed(args[0].uri, args[0].remoteStreamName);
    return removed;
  }

  override async mixerTerminate(...args: ArgsOf<'mixerTerminate'>): Promise<ResultOf<'mixerTerminate'>> {
    await super.mixerTerminate(...args);
    this.#mixers.ended(args[0]);
  }

  /** The worker threads running now: for diagnostics, and for tests that end one. */
  threads(): Worker[] {
    return this.#router.alive().map((thread) => thread.worker);
  }

  /** The worker thread that holds `stream`, if any. */
  threadOf(stream: string): Worker | undefined {
    return this.#router.holder('stream', stream)?.worker;
  }

  watch(listener: (change: PushChange) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  events(listener: (event: LifecycleEvent) => void): () => void {
    this.#followers.add(listener);
    return () => this.#followers.delete(listener);
  }

  status(): PlaneStatus {
    const pushes: PlaneStatus['pushes'] = {};
    // A stopped worker's streams are gone, though it last told of them.
    const alive = this.#router.alive();
    for (const thread of alive) {
      for (const [state, n] of Object.entries(thread.pushes) as [keyof PlaneStatus['pushes'], number][])
        pushes[state] = (pushes[state] ?? 0) + n;
    }
    return {
      publishers: alive.reduce((sum, thread) => sum + thread.load.publishers, 0),
      pushes,
      overloaded: alive.every((thread) => thread.load.overload !== undefined),
      threads: this.#router.all.map((thread) => thread.load),
    };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#router.all.map((thread) => thread.close()));
    })();
    return this.#closing;
  }

  killChildren(): void {
    for (const thread of this.#router.all) thread.killChildren();
  }
}
