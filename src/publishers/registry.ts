import type { Logger } from 'pino';
import { conflict, invalid } from '../errors.js';
import { TypedEmitter } from '../events.js';
import type { IngestEngine } from '../ingest/engine.js';
import { Publisher } from './publisher.js';

export type RegistryEvents = {
  /** A stream became publishing (WebRTC connected). */
  publishing: [Publisher];
  /** `lost`: it went away (connection gone, page closed) rather than being ended on purpose. */
  closed: [Publisher, reason: string, lost: boolean];
};

/** Stream names: what Web Call Server accepts in practice, kept safe for URLs and file names. */
export const STREAM_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export function checkStreamName(name: string, field = 'streamName'): void {
  if (!STREAM_NAME.test(name)) throw invalid(field, 'must be 1-128 letters, digits, "_", "." or "-"');
}

/** Owns every publisher, keyed by stream name; a name publishes once at a time. */
export class PublisherRegistry extends TypedEmitter<RegistryEvents> {
  readonly #byName = new Map<string, Publisher>();
  readonly #pending = new Set<string>();

  constructor(
    private readonly engine: IngestEngine,
    private readonly options: { keyframeIntervalMs: number; mediaTimeoutMs: number; log: Logger },
  ) {
    super((event, error) => options.log.error({ err: error, event }, 'registry listener failed'));
  }

  async publish(name: string, offer: string): Promise<Publisher> {
    checkStreamName(name);
    if (this.#byName.has(name) || this.#pending.has(name)) throw conflict(`stream ${name} is already publishing`);
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
