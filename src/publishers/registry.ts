import { trackSize } from '../core/tracked.js';
import type { Logger } from 'pino';
import { conflict, unavailable } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { IngestEngine, IngestSession, LocalKinds, LocalTarget } from '../ingest/engine.js';
import { noIceCheckWarning } from '../ingest/ice-addresses.js';
import { firstCandidateKind } from '../ingest/sdp.js';
import { Publisher } from './publisher.js';
import { checkStreamName } from './stream-name.js';
import { Slots } from '../core/slots.js';

/** A publisher still without an ICE check after this long is told of in the log and its stream's `warning` (ms). */
const ICE_CHECK_WARN_MS = 4000;

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

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: PublisherRegistry): void {
    trackSize('publishers', owner, (self) => self.#byName.size);
    trackSize('publishers_pending', owner, (self) => self.#pending.size);
  }

  constructor(
    private readonly engine: IngestEngine,
    private readonly options: {
      keyframeIntervalMs: number;
      mediaTimeoutMs: number;
      /** A simulcast layer no push holds is let go after this long (ms). */
      layerIdleMs?: number;
      log: Logger;
      maxPublishers?: number;
      /** The addresses the engine announces, named when no ICE check comes. */
      announced?: readonly string[];
      /** How long a publisher may go without an ICE check before the warning (ms). */
      iceCheckWarnMs?: number;
      /** Throws (503) when the gateway takes on no more work now. */
      admit?: (what: string) => void;
      /** Whether the machine is out of CPU now: a publisher's silence then is not taken for its loss. */
      saturated?: () => boolean;
      /** Shared with the other workers; one of this registry's own by default. */
      slots?: Slots;
    },
  ) {
    super((event, error) => options.log.error({ err: error, event }, 'registry listener failed'));
    PublisherRegistry.#trackSizes(this);
    this.#slots = options.slots ?? Slots.own();
  }

  async publish(name: string, offer: string, clientAddress?: string): Promise<Publisher> {
    checkStreamName(name);
    // A client that publishes a name again while its first publish of it has not had an ICE check
    // has given that one up (its peer connection failed): the new one takes the name at once,
    // rather than a 409 until the connect timeout. As a loss, so that pushes waiting for the
    // stream wait on for the new one.
    const stale = this.#byName.get(name);
    if (
      stale?.state === 'connecting' &&
      stale.session.iceChecked !== true &&
      clientAddress !== undefined &&
      stale.clientAddress === clientAddress
    ) {
      await stale.close('published again by its client before it connected', true);
    }
    const session = await this.#take(name, `publishing ${name}`, () => this.engine.accept(offer));
    const publisher = this.#adopt(name, session);
    publisher.clientAddress = clientAddress;
    const iceCheckWarnMs = this.options.iceCheckWarnMs ?? ICE_CHECK_WARN_MS;
    const iceWatch = setTimeout(() => {
      if (publisher.state !== 'connecting' || session.iceChecked !== false) return;
      const offerCandidate = firstCandidateKind(offer);
      publisher.warning = noIceCheckWarning(this.options.announced ?? [], offerCandidate, iceCheckWarnMs);
      this.options.log.warn({ stream: name, announced: this.options.announced, offerCandidate }, publisher.warning);
    }, iceCheckWarnMs).unref();
    publisher.on('publishing', () => clearTimeout(iceWatch));
    publisher.on('closed', () => clearTimeout(iceWatch));
    return publisher;
  }

  /**
   * Publishes a stream the gateway makes (a mixer's output) under `name`, counted as a publisher:
   * its encoder sends RTP to the targets returned (see `IngestEngine.acceptLocal`).
   */
  async publishLocal(name: string, kinds: LocalKinds): Promise<{ publisher: Publisher; targets: LocalTarget[] }> {
    checkStreamName(name);
    const { engine } = this;
    if (!engine.acceptLocal)
      throw unavailable('the WebRTC engine (webrtc_engine) makes no stream of its own: mixers need mediasoup');
    let targets: LocalTarget[] = [];
    const session = await this.#take(name, `making ${name}`, async () => {
      const local = await engine.acceptLocal!(kinds);
      targets = local.targets;
      return local.session;
    });
    return { publisher: this.#adopt(name, session), targets };
  }

  /** Takes `name` and a publisher slot while `accept` makes the stream's session; both are given back if it fails. */
  async #take(name: string, what: string, accept: () => Promise<IngestSession>): Promise<IngestSession> {
    if (this.#byName.has(name) || this.#pending.has(name)) throw conflict(`stream ${name} is already publishing`);
    const max = this.options.maxPublishers ?? Infinity;
    if (!this.#slots.take(max))
      throw unavailable(`the gateway is at its limit of ${max} publishers (limit_publishers)`);
    this.#pending.add(name);
    try {
      this.options.admit?.(what);
      return await accept();
    } catch (error) {
      this.#slots.give();
      throw error;
    } finally {
      this.#pending.delete(name);
    }
  }

  /** The publisher of a session made, under `name`: listed until it closes, its slot given back then. */
  #adopt(name: string, session: IngestSession): Publisher {
    const log = this.options.log.child({ stream: name, publisher: session.id });
    const publisher = new Publisher(name, session, {
      keyframeIntervalMs: this.options.keyframeIntervalMs,
      mediaTimeoutMs: this.options.mediaTimeoutMs,
      layerIdleMs: this.options.layerIdleMs,
      saturated: this.options.saturated,
      log,
    });
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
   * A publisher that was lost (its pushes wait for it in standby) is ended on purpose after
   * all: a WHIP DELETE or the SDK's unpublish that came after its connection closed. It is told as
   * ended, so what follows an end on purpose follows: its pushes end at once, its kept pushes
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
