import type { Logger } from 'pino';
import { conflict, unavailable } from '../errors.js';
import { TypedEmitter } from '../events.js';
import type { IngestEngine } from '../ingest/engine.js';
import { Publisher } from './publisher.js';
import { checkStreamName } from './stream-name.js';
import { Slots } from '../slots.js';

export type RegistryEvents = {
  /** A stream became publishing (WebRTC connected). */
  publishing: [Publisher];
  /** `lost`: it went away (connection gone, page closed) rather than being ended on purpose. */
  closed: [Publisher, reason: string, lost: boolean];
};

/** Owns every publisher, keyed by stream name; a name publishes once at a time. */
export class PublisherRegistry extends TypedEmitter<RegistryEvents> {
  readonly #byName = new Map<string, Publisher>();
  readonly #pending = new Set<string>();
  /** The gateway's publishers: this registry's and, with workers, every other worker's. */
  readonly #slots: Slots;

  constructor(
    private readonly engine: IngestEngine,
    private readonly options: {
      keyframeIntervalMs: number;
      mediaTimeoutMs: number;
      log: Logger;
      maxPublishers?: number;
      /** Throws (503) when the gateway takes on no more work now. */
      admit?: (what: string) => void;
      /** Shared with the other workers; one of this registry's own by default. */
      slots?: Slots;
    },
  ) {
    super((event, error) => options.log.error({ err: error, event }, 'registry listener failed'));
    this.#slots = options.slots ?? Slots.own();
  }

  async publish(name: string, offer: string, clientAddress?: string): Promise<Publisher> {
    checkStreamName(name);
    if (this.#byName.has(name) || this.#pending.has(name)) throw conflict(`stream ${name} is already publishing`);
    const max = this.options.maxPublishers ?? Infinity;
    if (!this.#slots.take(max)) throw unavailable(`the gateway is at its limit of ${max} publishers (limit_publishers)`);
    this.#pending.add(name);
    let session;
    try {
      this.options.admit?.(`publishing ${name}`);
      session = await this.engine.accept(offer);
    } catch (error) {
      this.#slots.give();
      throw error;
    } finally {
      this.#pending.delete(name);
    }
    const publisher = new Publisher(name, session, {
      keyframeIntervalMs: this.options.keyframeIntervalMs,
      mediaTimeoutMs: this.options.mediaTimeoutMs,
      log: this.options.log.child({ stream: name, publisher: session.id }),
    });
    publisher.clientAddress = clientAddress;
    this.#byName.set(name, publisher);
    publisher.on('publishing', () => this.safeEmit('publishing', publisher));
    publisher.on('closed', (reason, lost) => {
      if (this.#byName.get(name) === publisher) this.#byName.delete(name);
      this.#slots.give();
      this.safeEmit('closed', publisher, reason, lost);
    });
    return publisher;
  }

  /**
   * A publisher that was lost (its transponders wait for it in standby) is ended on purpose after
   * all: a WHIP DELETE or the SDK's unpublish that came after its connection closed. It is told as
   * ended, so what follows an end on purpose follows: its transponders end at once, its kept pushes
   * are forgotten, `publisher.ended` is told.
   */
  endLost(publisher: Publisher, reason: string): void {
    if (publisher.state !== 'closed' || this.#byName.get(publisher.name) === publisher) return;
    this.safeEmit('closed', publisher, reason, false);
  }

  get(name: string): Publisher | undefined {
    return this.#byName.get(name);
  }

  all(): Publisher[] {
    return [...this.#byName.values()];
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all(this.all().map((p) => p.close(reason)));
  }
}
