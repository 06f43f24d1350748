import { cpus } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Fixture } from '../kit/fixture.js';
import { typeScriptWorker } from '../kit/source-workers.js';
import { round } from './report.js';

/** What the benchmark asks of one of the load generator's threads. */
export type ToThread = { id: number } & (
  | { op: 'publish'; baseUrl: string; name: string; localAddress?: string; exchange: boolean }
  | { op: 'answer'; sdp?: string; error?: string }
  | { op: 'stop'; name: string }
  | { op: 'window' }
  | { op: 'report'; from: number; to: number }
);

/** What a thread answers: a request done or failed, or an offer to be exchanged for an answer. */
export type FromThread =
  | { op: 'done'; id: number; value: unknown }
  | { op: 'failed'; id: number; error: string }
  | { op: 'offer'; id: number; sdp: string };

/** One thread's account of a window. */
export interface ThreadReport {
  /** How late each frame due in the window was sent (ms). */
  late: number[];
  publishers: number;
  /** Video frames its publishers sent since they began. */
  framesSent: number;
  /** Datagrams its publishers' ICE connections dropped unsent since they began (`SyntheticPublisher.sendsLost`). */
  sendsLost: number;
  loopDelayP99Ms: number;
  /** The most frames any of its publishers was behind its schedule (sampled every 100 ms). */
  backlogFrames: number;
}

/**
 * The load generator fed a step only if it sent this share of the frames due in the window, none
 * later than MAX_LATE_MS, and its publishers' ICE connections dropped none of what they were given
 * (werift drops it without a word once its consent to send has expired): a step it could not feed
 * says nothing of the server it fed, gateway or peer.
 */
const MIN_SENT = 0.98;
const MAX_LATE_MS = 500;

/** How the load generator kept to its publishers' schedule over a window. */
export interface GeneratorWindow {
  sentPercent: number;
  lateP99Ms: number;
  fed: boolean;
  /** The worst of its threads' event-loop delay p99 over the window (ms). */
  loopDelayP99Ms: number;
  /** The most video frames any publisher was behind its schedule during the window. */
  backlogFrames: number;
  /** Video frames its publishers sent, from their start to the window's end. */
  framesSent: number;
  /** Datagrams its publishers' ICE connections dropped unsent, from their start to the window's end. */
  sendsLost: number;
}

/** Tells how the load generator kept up, as printed beside every step. */
export const generatorSaid = (g: GeneratorWindow): string =>
  `the load generator sent ${g.sentPercent} % of its frames due (p99 ${g.lateP99Ms} ms late, ` +
  `at most ${g.backlogFrames} frames behind, its threads' event-loop delay p99 ${g.loopDelayP99Ms} ms, ` +
  `${g.sendsLost} datagrams dropped unsent)`;

/** A publisher on one of the generator's threads. */
export interface LoadPublisher {
  readonly name: string;
  stop(): Promise<void>;
}

/**
 * The capacity ramps' load generator: synthetic publishers (werift, each one's SRTP made in
 * JavaScript) spread over worker threads of the benchmark's process, one per core by default, so
 * that a single thread's pace is not what ends a ramp. Each thread measures its own event-loop delay
 * and how far its publishers fell behind; `window()` brackets what a step is judged on.
 */
export class LoadGenerator {
  readonly #threads: Worker[];
  readonly #pending = new Map<
    number,
    { thread: Worker; resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  readonly #exchanges = new Map<number, (offer: string) => Promise<string>>();
  #nextId = 1;
  #next = 0;
  readonly #placed = new Map<string, Worker>();
  /** Threads that ended, and why: nothing more is asked of them. */
  readonly #ended = new Map<Worker, Error>();

  constructor(
    private readonly fixture: Fixture,
    threads = Math.max(1, Number(process.env.BENCH_LOAD_THREADS) || cpus().length),
  ) {
    const entry = new URL('./load-thread.ts', import.meta.url);
    this.#threads = Array.from({ length: threads }, (_, i) => {
      const thread = typeScriptWorker(entry, { workerData: { fixture }, name: `load-${i}` });
      thread.on('message', (message: FromThread) => this.#received(thread, message));
      thread.on('error', (error) => this.#fail(thread, error));
      thread.on('exit', (code) => this.#fail(thread, new Error(`a load generator thread exited with ${code}`)));
      return thread;
    });
  }

  /**
   * Publishes `name` from the next thread in turn: to the gateway's WHIP endpoint at `baseUrl`, or
   * through `exchange` (a peer's signalling, run here) from `localAddress`.
   */
  async publish(
    baseUrl: string,
    name: string,
    options: { localAddress?: string; exchange?: (offer: string) => Promise<string> } = {},
  ): Promise<LoadPublisher> {
    const thread = this.#threads[this.#next++ % this.#threads.length]!;
    const id = this.#nextId++;
    if (options.exchange) this.#exchanges.set(id, options.exchange);
    try {
      const { localAddress, exchange } = options;
      await this.#ask(thread, { op: 'publish', id, baseUrl, name, localAddress, exchange: !!exchange });
    } finally {
      this.#exchanges.delete(id);
    }
    this.#placed.set(name, thread);
    return { name, stop: () => this.#stop(name) };
  }

  async #stop(name: string): Promise<void> {
    const thread = this.#placed.get(name);
    if (!thread) return;
    this.#placed.delete(name);
    await this.#ask(thread, { op: 'stop', id: this.#nextId++, name });
  }

  /** Starts a window: every thread's loop delay and backlog are measured from now. */
  async open(): Promise<void> {
    await Promise.all(this.#threads.map((thread) => this.#ask(thread, { op: 'window', id: this.#nextId++ })));
  }

  /** How the generator kept to schedule between `from` and `to` (on `now()`'s clock) with `publishers` publishing. */
  async window(from: number, to: number, publishers: number): Promise<GeneratorWindow> {
    const reports = (await Promise.all(
      this.#threads.map((thread) => this.#ask(thread, { op: 'report', id: this.#nextId++, from, to })),
    )) as ThreadReport[];
    const late = reports.flatMap((r) => r.late).sort((a, b) => a - b);
    const due = publishers * ((to - from) / 1000) * this.fixture.fps;
    const lateP99Ms = late.length ? late[Math.min(late.length - 1, Math.floor(late.length * 0.99))]! : Infinity;
    const sentPercent = due > 0 ? (late.length / due) * 100 : 100;
    const sendsLost = reports.reduce((sum, r) => sum + r.sendsLost, 0);
    return {
      sentPercent: round(sentPercent),
      lateP99Ms: round(lateP99Ms),
      fed: sentPercent >= MIN_SENT * 100 && lateP99Ms <= MAX_LATE_MS && sendsLost === 0,
      loopDelayP99Ms: round(Math.max(...reports.map((r) => r.loopDelayP99Ms))),
      backlogFrames: Math.max(...reports.map((r) => r.backlogFrames)),
      framesSent: reports.reduce((sum, r) => sum + r.framesSent, 0),
      sendsLost,
    };
  }

  /** Stops every publisher still publishing (on the threads still running) and ends the threads. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#placed.keys()].map((name) => this.#stop(name)));
    await Promise.all(this.#threads.map((thread) => thread.terminate()));
  }

  #ask(thread: Worker, message: ToThread): Promise<unknown> {
    const ended = this.#ended.get(thread);
    if (ended) return Promise.reject(ended);
    return new Promise((resolve, reject) => {
      this.#pending.set(message.id, { thread, resolve, reject });
      thread.postMessage(message);
    });
  }

  #received(thread: Worker, message: FromThread): void {
    if (message.op === 'offer') {
      const exchange = this.#exchanges.get(message.id);
      const answer = (body: { sdp?: string; error?: string }): void =>
        thread.postMessage({ op: 'answer', id: message.id, ...body } satisfies ToThread);
      if (!exchange) return answer({ error: 'no signalling for this publish' });
      exchange(message.sdp).then(
        (sdp) => answer({ sdp }),
        (error: unknown) => answer({ error: (error as Error).message }),
      );
      return;
    }
    const pending = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    if (message.op === 'done') pending?.resolve(message.value);
    else pending?.reject(new Error(message.error));
  }

  /** A thread ended: what was asked of it fails, and nothing more is asked of it. */
  #fail(thread: Worker, error: Error): void {
    if (!this.#ended.has(thread)) this.#ended.set(thread, error);
    for (const [id, pending] of this.#pending) {
      if (pending.thread !== thread) continue;
      this.#pending.delete(id);
      pending.reject(error);
    }
  }
}

/**
 * The pushes a capacity ramp tries, in order: the plan's steps, and past a step the load generator
 * could not feed, the step halfway back to the last one it fed (while they are 4 or more apart),
 * so that the ramp gets as near as the generator allows to where the server itself loses frames.
 * Once a fed step has failed, that limit is found: a step not fed after it ends the ramp.
 */
export class Ramp {
  #plan: number[];
  #lastFed = 0;
  #limitFound = false;

  constructor(plan: readonly number[]) {
    this.#plan = [...plan];
  }

  next(): number | undefined {
    return this.#plan.shift();
  }

  /** A step was fed; `failed`: the server lost frames there (its limit). */
  fed(count: number, failed = false): void {
    this.#lastFed = count;
    this.#limitFound ||= failed;
  }

  /** A step was not fed: the step halfway back is tried next, if any; returns it. */
  notFed(count: number): number | undefined {
    const back = !this.#limitFound && count - this.#lastFed >= 4;
    this.#plan = back ? [Math.round((this.#lastFed + count) / 2)] : [];
    return this.#plan[0];
  }

  end(): void {
    this.#plan = [];
  }
}
