import { trackSize } from '../core/tracked.js';
import { availableParallelism } from 'node:os';
import { MessageChannel, MessagePort, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { invalid, unavailable } from '../core/errors.js';
import type { ChildRecord } from '../ffmpeg/supervisor.js';
import type { SpawnerAddress } from '../ffmpeg/spawner-wire.js';
import type { LifecycleEvent } from './lifecycle.js';
import type { MediaPlane, PlaceLoad, PlaneStatus, Negotiated, PublishHandlers } from './plane.js';
import { PUBLISHER_SLOTS, Slots, PUSH_SLOTS } from '../core/slots.js';
import { isActive, type PushState } from '../pushes/states.js';
import type { WorkerData } from './worker.js';
import {
  checkResult,
  oldestFirst,
  PLACE_METHODS,
  type ArgsOf,
  type PlaceMethod,
  type ResultOf,
  type RoutedMethod,
} from './methods.js';
import { RoutedPlane } from './routed-plane.js';
import { mixerStream } from '../mixers/requests.js';
import { fromWire, type Call, type WorkerMessage } from './wire.js';
import type { PushChange } from '../pushes/changes.js';

/** The number of worker threads `config.workers` asks for: 'auto' is one per core. */
export function workerCount(config: Pick<GatewayConfig, 'workers'>): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** How long the main thread waits for a worker to end its streams at shutdown. */
const CLOSE_TIMEOUT_MS = 8000;
/** Each worker's share of the ICE port range is at least this many ports. */
const MIN_PORTS_PER_WORKER = 16;
/** How soon a worker that stopped unexpectedly is started again. */
const RESTART_DELAY_MS = 1000;

/** Starts the worker thread named `name` that runs the streams of `data`. */
export type WorkerStarter = (data: WorkerData, name: string) => Worker;

/** The built gateway's workers: `worker.js` beside this module. */
const builtWorker: WorkerStarter = (data, name) =>
  new Worker(new URL('./worker.js', import.meta.url), { workerData: data, name });

/** One worker thread: calls to it, and what it last told of its load. */
class Place {
  readonly worker: Worker;
  readonly #calls = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  #next = 0;
  #stopped: string | undefined;
  load: PlaceLoad;
  pushes: PlaneStatus['pushes'] = {};

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: Place): void {
    trackSize('plane_calls', owner, (self) => self.#calls.size);
  }

  constructor(
    readonly index: number,
    startWorker: WorkerStarter,
    data: WorkerData,
    onMessage: (place: Place, message: WorkerMessage) => void,
    onStop: (place: Place, reason: string) => void,
  ) {
    Place.#trackSizes(this);
    this.load = {
      place: String(index),
      eventLoopDelayMs: 0,
      eventLoopDelayMaxMs: 0,
      eventLoopUtilization: 0,
      machineCpuPercent: 0,
      publishers: 0,
    };
    this.worker = startWorker(data, `media-${index}`);
    this.worker.on('message', (message: WorkerMessage) => {
      if (message.kind !== 'reply') return onMessage(this, message);
      const call = this.#calls.get(message.id);
      this.#calls.delete(message.id);
      if (message.error) call?.reject(fromWire(message.error));
      else call?.resolve(message.value);
    });
    this.worker.on('error', (error) => this.#stop(`failed: ${error.message}`, onStop));
    this.worker.on('exit', (code) => this.#stop(`exited with ${code}`, onStop));
  }

  get alive(): boolean {
    return this.#stopped === undefined;
  }

  /** Calls `method` in the worker; what comes back is checked against `PLACE_METHODS`. */
  async call<M extends PlaceMethod>(method: M, ...args: ArgsOf<M>): Promise<ResultOf<M>> {
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

  #stop(reason: string, onStop: (place: Place, reason: string) => void): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    for (const call of this.#calls.values()) call.reject(unavailable(`media worker ${this.index} ${reason}`));
    this.#calls.clear();
    onStop(this, reason);
  }
}

/**
 * Streams spread over worker threads, one per core by default, so that the gateway's WebRTC and
 * RTMP work uses every core. The main thread keeps HTTP, the SDK's WebSockets and the routing:
 * a stream is placed on the worker with the fewest publishers that is not overloaded, and stays
 * there while the worker holds anything of it (a push waiting in standby for its publisher
 * to come back takes it back in the same worker); pushes are found by the worker that told
 * of them. Limits are counted across workers in shared memory (`Slots`).
 */
export class WorkerPlane extends RoutedPlane implements MediaPlane {
  readonly #places: Place[] = [];
  /** Where each stream is placed, and calls on their way there that may place it. */
  readonly #streams = new Map<string, { place: Place; pending: number }>();
  /** The mixers each stream is an input of (their URIs), as this plane added them. */
  readonly #mixerInputs = new Map<string, Set<string>>();
  /** Where each mixer runs (by URI), and the stream it publishes there, as this plane started it. */
  readonly #mixers = new Map<string, { place: Place; stream: string }>();
  readonly #sessions = new Map<string, Place>();
  readonly #publishes = new Map<string, { place: Place; handlers: PublishHandlers }>();
  readonly #watchers = new Set<(change: PushChange) => void>();
  readonly #followers = new Set<(event: LifecycleEvent) => void>();
  /** ffmpeg processes of every worker, and whose they are, for the process's last moments. */
  readonly #children = new Map<number, Place>();
  readonly #slots = Slots.buffer();
  #closing: Promise<void> | undefined;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: WorkerPlane): void {
    trackSize('plane_streams', owner, (self) => self.#streams.size);
    trackSize('plane_mixer_inputs', owner, (self) => self.#mixerInputs.size);
    trackSize('plane_mixers', owner, (self) => self.#mixers.size);
    trackSize('plane_sessions', owner, (self) => self.#sessions.size);
    trackSize('plane_publishes', owner, (self) => self.#publishes.size);
    trackSize('plane_children', owner, (self) => self.#children.size);
  }

  constructor(
    private readonly config: GatewayConfig,
    private readonly log: Logger,
    /** `startWorker`: how a worker is started (the built one by default; the tests run the sources). */
    private readonly deps: { childRecord?: ChildRecord; startWorker?: WorkerStarter; spawner?: SpawnerAddress } = {},
  ) {
    super();
    WorkerPlane.#trackSizes(this);
    const count = workerCount(config);
    const ports = config.webrtc_ice_port_max - config.webrtc_ice_port_min + 1;
    if (ports < count * MIN_PORTS_PER_WORKER) {
      throw new ConfigError(
        `webrtc_ice_port_min, webrtc_ice_port_max: ${ports} ports for ${count} workers (workers); ` +
          `each needs at least ${MIN_PORTS_PER_WORKER}`,
      );
    }
    for (let index = 0; index < count; index++) this.#places.push(this.#start(index));
  }

  /** Sends a routed call to its place (see `Route`). */
  protected async route<M extends RoutedMethod>(method: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    const route = PLACE_METHODS[method].route;
    if (route.to === 'own') throw new Error(`${method} is not routed`);
    const key = (route.key as (args: unknown[]) => string | undefined)(args);
    const call = (place: Place): Promise<unknown> =>
      (place.call as (m: PlaceMethod, ...a: unknown[]) => Promise<unknown>)(method, ...args);
    if (route.to === 'gather' && key === undefined) {
      return oldestFirst(await Promise.all(this.#places.filter((p) => p.alive).map(call))) as ResultOf<M>;
    }
    const held =
      key === undefined
        ? undefined
        : route.to === 'session'
          ? this.#sessions.get(key)
          : route.to === 'mixer'
            ? this.#mixers.get(key)?.place
            : this.#streams.get(key)?.place;
    return (await call(held?.alive ? held : this.#any())) as ResultOf<M>;
  }

  #start(index: number): Place {
    const count = workerCount(this.config);
    // Each worker gathers ICE on its own share of the port range.
    const span = Math.floor((this.config.webrtc_ice_port_max - this.config.webrtc_ice_port_min + 1) / count);
    const min = this.config.webrtc_ice_port_min + index * span;
    const config = { ...this.config, webrtc_ice_port_min: min, webrtc_ice_port_max: min + span - 1 };
    return new Place(
      index,
      this.deps.startWorker ?? builtWorker,
      { config, index, slots: this.#slots, spawner: this.deps.spawner },
      (place, message) => this.#onMessage(place, message),
      (place, reason) => this.#onStop(place, reason),
    );
  }

  #onMessage(place: Place, message: WorkerMessage): void {
    switch (message.kind) {
      case 'publishing':
        return this.#tell(() => this.#publishes.get(message.publisherId)?.handlers.publishing?.());
      case 'closed':
        return this.#closed(message.publisherId, message.reason, message.lost);
      case 'push':
        // A push's last change (stopped) may come after its removal: it is not routed to again.
        if (message.change.state !== 'stopped') this.#sessions.set(message.change.mediaSessionId, place);
        else if (this.#sessions.get(message.change.mediaSessionId) === place)
          this.#sessions.delete(message.change.mediaSessionId);
        for (const watcher of this.#watchers) this.#tell(() => watcher(message.change));
        return;
      case 'event':
        if (message.event.type === 'mixer.ended') this.#mixerEnded(message.event.mixer, place);
        for (const follower of this.#followers) this.#tell(() => follower(message.event));
        return;
      case 'removed':
        if (this.#sessions.get(message.mediaSessionId) === place) this.#sessions.delete(message.mediaSessionId);
        return;
      case 'idle': {
        const entry = this.#streams.get(message.stream);
        if (entry?.place === place && entry.pending === 0) this.#streams.delete(message.stream);
        return;
      }
      case 'status':
        place.load = message.load;
        place.pushes = message.pushes;
        return;
      case 'child':
        if (message.op === 'add') this.#children.set(message.pid, place);
        else this.#children.delete(message.pid);
        return message.op === 'add'
          ? this.deps.childRecord?.add(message.pid)
          : this.deps.childRecord?.remove(message.pid);
    }
  }

  #closed(publisherId: string, reason: string, lost: boolean): void {
    const publish = this.#publishes.get(publisherId);
    this.#publishes.delete(publisherId);
    this.#tell(() => publish?.handlers.closed?.(reason, lost));
  }

  /** A listener's exception stays with it. */
  #tell(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      this.log.error({ err: error }, 'plane listener failed');
    }
  }

  #onStop(place: Place, reason: string): void {
    if (this.#closing) return;
    this.log.error({ worker: place.index, reason }, 'media worker stopped: its streams are lost; starting it again');
    for (const [name, entry] of this.#streams) if (entry.place === place) this.#streams.delete(name);
    for (const [id, at] of this.#sessions) if (at === place) this.#sessions.delete(id);
    for (const [uri, mixer] of this.#mixers) if (mixer.place === place) this.#mixerEnded(uri, place);
    for (const [id, publish] of this.#publishes)
      if (publish.place === place) this.#closed(id, `media worker ${reason}`, true);
    // The slots its streams held are given back, as it last told of them.
    const publishers = new Slots(this.#slots, PUBLISHER_SLOTS);
    const pushes = new Slots(this.#slots, PUSH_SLOTS);
    for (let i = 0; i < place.load.publishers; i++) publishers.give();
    for (const [state, count] of Object.entries(place.pushes) as [PushState, number][]) {
      if (isActive(state)) for (let i = 0; i < count; i++) pushes.give();
    }
    for (const [pid, at] of this.#children) {
      if (at !== place) continue;
      killGroup(pid); // the worker's ffmpeg would otherwise run on
      this.#children.delete(pid);
      this.deps.childRecord?.remove(pid);
    }
    setTimeout(() => {
      if (!this.#closing) this.#places[place.index] = this.#start(place.index);
    }, RESTART_DELAY_MS).unref();
  }

  /**
   * The place for a new publish of `name`: the one holding it, else the least busy that is not
   * overloaded (the one with the fewest streams; for a mixer's stream, with the fewest mixers first).
   */
  #placeFor(name: string, mixer = false): Place {
    const held = this.#streams.get(name)?.place;
    if (held?.alive) return held;
    const alive = this.#places.filter((p) => p.alive);
    const open = alive.filter((p) => !p.load.overload);
    if (!open.length) {
      const reason = alive[0]?.load.overload ?? 'no media worker is running';
      throw unavailable(
        `the gateway is overloaded (${reason}): publishing ${name} refused, the streams running keep their share`,
        3,
      );
    }
    const placed = (p: Place): number => [...this.#streams.values()].filter((e) => e.place === p).length;
    const mixers = (p: Place): number => (mixer ? [...this.#mixers.values()].filter((m) => m.place === p).length : 0);
    return open.reduce((best, p) =>
      mixers(p) < mixers(best) || (mixers(p) === mixers(best) && placed(p) < placed(best)) ? p : best,
    );
  }

  /** Runs `call` on the place of `name`, which holds the stream while it is on its way. */
  async #onStream<T>(name: string, place: Place, call: (place: Place) => Promise<T>): Promise<T> {
    let entry = this.#streams.get(name);
    if (entry?.place !== place) this.#streams.set(name, (entry = { place, pending: 0 }));
    entry.pending++;
    try {
      return await call(place);
    } finally {
      entry.pending--;
    }
  }

  async publish(
    name: string,
    offer: string,
    handlers: PublishHandlers = {},
    clientAddress?: string,
  ): Promise<Negotiated> {
    const published = await this.#onStream(name, this.#placeFor(name), async (place) => {
      const published = await place.call('publish', name, offer, clientAddress);
      this.#publishes.set(published.id, { place, handlers });
      return published;
    });
    // Mixers in other workers that wait for this stream get its media back.
    // (A mixer in the stream's own worker hears of it there.)
    const place = this.#streams.get(name)?.place;
    for (const uri of this.#mixerInputs.get(name) ?? []) {
      if (this.#mixerPlace(uri) !== place)
        void this.#relayInput({ uri, remoteStreamName: name }).catch(() => undefined);
    }
    return published;
  }

  /**
   * A mixer is placed as a publish of its stream: where a stream of that name is (which refuses
   * it), else in the worker with the fewest mixers. Its stream is held there like a publisher's,
   * so that a publish of the same name reaches that worker, and is refused.
   */
  override async mixerStartup(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    const running = this.#mixers.get(request.uri)?.place;
    const stream = mixerStream(request);
    const place = running?.alive ? running : this.#placeFor(stream, true);
    const started = await this.#onStream(stream, place, (p) => p.call('mixerStartup', request));
    this.#mixers.set(request.uri, { place, stream });
    return started;
  }

  /**
   * A mixer runs in one worker; an input publishing in another comes to it over a relay: a port
   * between the two workers, the media sent by the stream's (`relayStream`). A stream made from
   * the mixer's own output, through mixers of any worker, is refused.
   */
  override async mixerAdd(request: ArgsOf<'mixerAdd'>[0]): Promise<ResultOf<'mixerAdd'>> {
    const own = this.#mixers.get(request.uri)?.stream;
    if (own !== undefined && this.#madeFrom(request.remoteStreamName, own)) {
      throw invalid(
        'remoteStreamName',
        `${request.remoteStreamName} is made from this mixer's own output (${own}): a mixer cannot take it`,
      );
    }
    const added = await this.#relayInput(request);
    const inputs = this.#mixerInputs.get(request.remoteStreamName) ?? new Set<string>();
    this.#mixerInputs.set(request.remoteStreamName, inputs.add(request.uri));
    return added;
  }

  override async mixerRemove(...args: ArgsOf<'mixerRemove'>): Promise<ResultOf<'mixerRemove'>> {
    const removed = await super.mixerRemove(...args);
    this.#forgetInput(args[0].remoteStreamName, args[0].uri);
    return removed;
  }

  override async mixerTerminate(...args: ArgsOf<'mixerTerminate'>): Promise<ResultOf<'mixerTerminate'>> {
    await super.mixerTerminate(...args);
    this.#mixerEnded(args[0]);
  }

  /** Whether `stream` is `output`, or made by mixers (of any worker) from it. */
  #madeFrom(stream: string, output: string, seen = new Set<string>()): boolean {
    if (stream === output) return true;
    if (seen.has(stream)) return false;
    seen.add(stream);
    const making = [...this.#mixers].filter(([, mixer]) => mixer.stream === stream).map(([uri]) => uri);
    return [...this.#mixerInputs].some(
      ([input, uris]) => making.some((uri) => uris.has(uri)) && this.#madeFrom(input, output, seen),
    );
  }

  /** The mixer `uri` (of `place`, when told by one) ended: its place and its inputs are forgotten. */
  #mixerEnded(uri: string, place?: Place): void {
    if (place && this.#mixers.get(uri)?.place !== place) return;
    this.#mixers.delete(uri);
    for (const stream of [...this.#mixerInputs.keys()]) this.#forgetInput(stream, uri);
  }

  /** `stream` is no longer an input of the mixer `uri`; a stream in no mixer is forgotten. */
  #forgetInput(stream: string, uri: string): void {
    const uris = this.#mixerInputs.get(stream);
    if (uris?.delete(uri) && uris.size === 0) this.#mixerInputs.delete(stream);
  }

  /** Where the mixer `uri` runs: where its calls are routed (`PLACE_METHODS`). */
  #mixerPlace(uri: string): Place {
    return this.#mixers.get(uri)?.place ?? this.#any();
  }

  /** Adds `request`'s stream to its mixer, over a relay when the stream publishes in another worker. */
  async #relayInput(request: ArgsOf<'mixerAdd'>[0]): Promise<ResultOf<'mixerAdd'>> {
    const mixerPlace = this.#mixerPlace(request.uri);
    const streamPlace = this.#streams.get(request.remoteStreamName)?.place;
    if (!streamPlace?.alive || streamPlace === mixerPlace) return mixerPlace.call('mixerAdd', request);
    const { port1, port2 } = new MessageChannel();
    if (!(await streamPlace.call('relayStream', request.remoteStreamName, port1))) {
      port2.close();
      return mixerPlace.call('mixerAdd', request);
    }
    try {
      return await mixerPlace.call('mixerAdd', request, port2);
    } catch (error) {
      port2.close();
      throw error;
    }
  }

  #any(): Place {
    const place = this.#places.find((p) => p.alive);
    if (!place) throw unavailable('no media worker is running', 3);
    return place;
  }

  /** The worker threads running now: for diagnostics, and for tests that end one. */
  threads(): Worker[] {
    return this.#places.filter((p) => p.alive).map((p) => p.worker);
  }

  /** The worker thread that holds `stream`, if any. */
  threadOf(stream: string): Worker | undefined {
    const place = this.#streams.get(stream)?.place;
    return place?.alive ? place.worker : undefined;
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
    for (const place of this.#places.filter((p) => p.alive)) {
      for (const [state, n] of Object.entries(place.pushes) as [keyof PlaneStatus['pushes'], number][])
        pushes[state] = (pushes[state] ?? 0) + n;
    }
    const alive = this.#places.filter((p) => p.alive);
    return {
      publishers: alive.reduce((sum, p) => sum + p.load.publishers, 0),
      pushes,
      overloaded: alive.every((p) => p.load.overload !== undefined),
      places: this.#places.map((p) => p.load),
    };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(
        this.#places.map(async (place) => {
          const timeout = new Promise((done) => setTimeout(done, CLOSE_TIMEOUT_MS).unref());
          await Promise.race([place.call('close').catch(() => undefined), timeout]);
          await place.worker.terminate();
        }),
      );
    })();
    return this.#closing;
  }

  killChildren(): void {
    for (const pid of this.#children.keys()) killGroup(pid);
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
