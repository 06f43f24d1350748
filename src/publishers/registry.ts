import type { Logger } from 'pino';
import { conflict, unavailable } from '../errors.js';
import { TypedEmitter } from '../events.js';
import type { IngestEngine } from '../ingest/engine.js';
import { Publisher } from './publisher.js';
import { checkStreamName } from './stream-name.js';

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

  constructor(
    private readonly engine: IngestEngine,
    private readonly options: {
      keyframeIntervalMs: number;
      mediaTimeoutMs: number;
      log: Logger;
      maxPublishers?: number;
      /** Throws (503) when the gateway takes on no more work now. */
      admit?: (what: string) => void;
    },
  ) {
    super((event, error) => options.log.error({ err: error, event }, 'registry listener failed'));
  }

  async publish(name: string, offer: string): Promise<Publisher> {
    checkStreamName(name);
    if (this.#byName.has(name) || this.#pending.has(name)) throw conflict(`stream ${name} is already publishing`);
    const max = this.options.maxPublishers ?? Infinity;
    if (this.#byName.size + this.#pending.size >= max) throw unavailable(`the gateway is at its limit of ${max} publishers (limit_publishers)`);
    this.options.admit?.(`publishing ${name}`);
    this.#pending.add(name);
    try {
      const session = await this.engine.accept(offer);
      const publisher = new Publisher(name, session, {
        keyframeIntervalMs: this.options.keyframeIntervalMs,
        mediaTimeoutMs: this.options.mediaTimeoutMs,
        log: this.options.log.child({ stream: name, publisher: session.id }),
      });
      this.#byName.set(name, publisher);
      publisher.on('publishing', () => this.safeEmit('publishing', publisher));
      publisher.on('closed', (reason, lost) => {
        if (this.#byName.get(name) === publisher) this.#byName.delete(name);
        this.safeEmit('closed', publisher, reason, lost);
      });
      return publisher;
    } finally {
      this.#pending.delete(name);
    }
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
