import { monotonicMs, wallClockMs } from '../core/clock.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { LifecycleEventType } from '../core/lifecycle-events.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import { sign, signingKey } from './signature.js';

export interface WebhookEndpoint {
  /** Names the endpoint in logs and metrics (its URL may hold a token). */
  id: string;
  url: string;
  /** The events it wants; every event when empty. */
  events: readonly LifecycleEventType[];
  secret: string;
  timeoutMs: number;
  /** Attempts per delivery before it is given up. */
  maxAttempts: number;
  /** Deliveries waiting at most (besides the one being made); past it the oldest waiting is dropped. */
  queueLimit: number;
}

export type DeliveryResult = 'delivered' | 'failed' | 'dropped';

export interface WebhookCounters {
  /** A delivery ended: delivered, given up after its attempts, or dropped from a full queue. */
  delivery(endpoint: string, result: DeliveryResult): void;
  /** One attempt failed (an error, a timeout or a status other than 2xx). */
  attemptFailed(endpoint: string): void;
}

/** Waits between attempts: 1 s, doubling, at most a minute, each lengthened by up to 25 %. */
export function retryWaitMs(attempt: number, random: () => number = Math.random): number {
  return Math.round(Math.min(60_000, 1000 * 2 ** (attempt - 1)) * (1 + 0.25 * random()));
}

interface Delivery {
  id: string;
  body: string;
}

/**
 * One endpoint's deliveries, in the order the events happened: one request at a time, each tried
 * until it is answered 2xx or its attempts are spent, then the next. Redirects are not followed.
 */
class EndpointQueue {
  readonly #queue: Delivery[] = [];
  readonly #key: Buffer;
  #running = false;
  #closed = false;
  #abort = new AbortController();
  #wake: (() => void) | undefined;

  constructor(
    readonly endpoint: WebhookEndpoint,
    private readonly counters: WebhookCounters,
    private readonly log: Logger,
    private readonly random: () => number,
  ) {
    this.#key = signingKey(endpoint.secret);
  }

  get pending(): number {
    return this.#queue.length;
  }

  push(delivery: Delivery): void {
    if (this.#closed) return;
    const inFlight = this.#running ? 1 : 0; // the first of the queue, being delivered: it stays
    if (this.#queue.length - inFlight >= this.endpoint.queueLimit) {
      this.#queue.splice(inFlight, 1);
      this.counters.delivery(this.endpoint.id, 'dropped');
      this.log.warn({ webhook: this.endpoint.id }, 'webhook queue full: the oldest delivery dropped');
    }
    this.#queue.push(delivery);
    if (!this.#running) void this.#run();
  }

  /** Stops at once: the request in flight is aborted and nothing more is sent. */
  close(): void {
    this.#closed = true;
    this.#abort.abort();
    this.#wake?.();
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#queue.length && !this.#closed) {
      const delivery = this.#queue[0]!;
      const result = await this.#deliver(delivery);
      if (this.#closed) break;
      this.#queue.shift();
      this.counters.delivery(this.endpoint.id, result);
    }
    this.#running = false;
  }

  async #deliver(delivery: Delivery): Promise<DeliveryResult> {
    const { endpoint } = this;
    for (let attempt = 1; ; attempt++) {
      const error = await this.#attempt(delivery);
      if (error === undefined) return 'delivered';
      if (this.#closed) return 'failed';
      this.counters.attemptFailed(endpoint.id);
      if (attempt >= endpoint.maxAttempts) {
        this.log.warn(
          { webhook: endpoint.id, delivery: delivery.id, attempts: attempt, reason: error },
          'webhook delivery given up',
        );
        return 'failed';
      }
      const waitMs = retryWaitMs(attempt, this.random);
      this.log.info(
        { webhook: endpoint.id, delivery: delivery.id, attempt, reason: error, inMs: waitMs },
        'webhook delivery failed: trying again',
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
      if (this.#closed) return 'failed';
    }
  }

  /** One request; undefined when answered 2xx, else why not (never the URL: it may hold a token). */
  async #attempt(delivery: Delivery): Promise<string | undefined> {
    const timestampS = Math.floor(wallClockMs() / 1000);
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.endpoint.timeoutMs)]);
    try {
      const response = await fetch(this.endpoint.url, {
        method: 'POST',
        redirect: 'manual',
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'webrtc-rtmp-gateway',
          'webhook-id': delivery.id,
          'webhook-timestamp': String(timestampS),
          'webhook-signature': sign(this.#key, delivery.id, timestampS, delivery.body),
        },
        body: delivery.body,
      });
      await response.body?.cancel().catch(() => {});
      return response.status >= 200 && response.status < 300 ? undefined : `answered ${response.status}`;
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'TimeoutError') return `no answer within ${this.endpoint.timeoutMs} ms`;
      if (name === 'AbortError') return 'closed';
      const cause = (error as { cause?: { code?: string } }).cause;
      return cause?.code ?? 'request failed';
    }
  }
}

/**
 * Tells the configured endpoints what happens to streams and pushes. Each event becomes one
 * delivery per endpoint that wants it, with an id (`webhook-id`, the same on every attempt, for
 * idempotency) and a signature; endpoints are independent of each other and of the media (nothing
 * here is awaited by a publisher or a push), and each holds at most its queue limit.
 */
export class WebhookDispatcher {
  readonly #queues: EndpointQueue[];

  constructor(
    endpoints: WebhookEndpoint[],
    counters: WebhookCounters,
    log: Logger,
    random: () => number = Math.random,
    /** In a cluster: the node that tells of the event (each event is told once, by its stream's node). */
    private readonly node?: string,
  ) {
    this.#queues = endpoints.map(
      (endpoint) => new EndpointQueue(endpoint, counters, log.child({ component: 'webhooks' }), random),
    );
  }

  get pending(): number {
    return this.#queues.reduce((sum, q) => sum + q.pending, 0);
  }

  /** One event: the same id and body to every endpoint that wants it. */
  send(event: LifecycleEvent, time = new Date()): void {
    const wanting = this.#queues.filter((q) => !q.endpoint.events.length || q.endpoint.events.includes(event.type));
    if (!wanting.length) return;
    const id = `evt_${randomUUID()}`;
    const { type, ...data } = event;
    const body = JSON.stringify({
      id,
      type,
      time: time.toISOString(),
      ...(this.node ? { node: this.node } : {}),
      data,
    });
    for (const queue of wanting) queue.push({ id, body });
  }

  /** Waits up to `ms` for the queued deliveries to be made, then stops. */
  async drain(ms: number): Promise<void> {
    const deadline = monotonicMs() + ms;
    while (this.pending > 0 && monotonicMs() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    this.close();
  }

  close(): void {
    for (const queue of this.#queues) queue.close();
  }
}
