import { trackSize } from '../core/tracked.js';
import type { Logger } from 'pino';
import { GatewayError, notFound, tooMany, unavailable } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { IngestEngine, ViewSession } from '../ingest/engine.js';
import { checkOffer } from '../ingest/offer-check.js';
import type { Slots } from '../core/slots.js';
import type { PublisherRegistry } from '../publishers/registry.js';

export interface ViewerLimits {
  /** Viewers of the whole gateway (`limit_viewers`, counted in `slots`). */
  total: number;
  /** Viewers of one stream (`limit_viewers_per_stream`). */
  perStream: number;
  /** Viewers of one stream from one client address (`limit_viewers_per_client`). */
  perClient: number;
}

export type ViewerEvents = {
  joined: [viewer: { stream: string; viewerId: string }];
  /** Gone, however it ended: it left, its connection failed or never came, the stream ended. */
  left: [viewer: { stream: string; viewerId: string; reason: string }];
};

/**
 * Viewers of published streams (WHEP): each one a session of the engine sending it the publisher's
 * media as it arrives. A viewer ends when it leaves (WHEP DELETE, its connection gone) or when the
 * stream ends. Viewers take nothing from the publisher or its pushes but a copy of each packet.
 */
export class ViewerRegistry extends TypedEmitter<ViewerEvents> {
  readonly #viewers = new Map<string, { stream: string; client: string; session: ViewSession }>();
  /** Offers being answered, counted against their stream's and client's limits as viewers are. */
  readonly #asking = new Set<{ stream: string; client: string }>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: ViewerRegistry): void {
    trackSize('viewers', owner, (self) => self.#viewers.size);
  }

  constructor(
    private readonly engine: IngestEngine,
    private readonly publishers: PublisherRegistry,
    private readonly limits: ViewerLimits,
    private readonly slots: Slots,
    private readonly log: Logger,
  ) {
    super((event, error) => log.error({ err: error, event }, 'viewer listener failed'));
    ViewerRegistry.#trackSizes(this);
  }

  /**
   * Answers the offer of a viewer of stream `name` from address `client`: the viewer's id and the
   * SDP answer. The stream's viewers are all here, whichever thread or node took their offers, so
   * its limits, the per-client one included, are counted here.
   */
  async view(name: string, offer: string, client: string): Promise<{ id: string; answer: string }> {
    if (!this.engine.view)
      throw new GatewayError('not_supported', 'watching a stream (WHEP) needs webrtc_engine: mediasoup');
    const publisher = this.publishers.get(name);
    if (!publisher || publisher.state !== 'publishing') throw notFound(`stream ${name} is not publishing`);
    checkOffer(offer, { dataChannel: true }); // a bad offer is told as such, before any limit
    const ofStream = this.count(name);
    if (ofStream >= this.limits.perStream)
      throw tooMany(`stream ${name} has ${ofStream} viewers, its limit (limit_viewers_per_stream)`);
    const ofClient = this.#ofClient(name, client);
    if (ofClient >= this.limits.perClient)
      throw tooMany(
        `this address already has ${ofClient} viewers of stream ${name}, its limit (limit_viewers_per_client)`,
      );
    if (!this.slots.take(this.limits.total))
      throw unavailable(`the gateway is at its limit of ${this.limits.total} viewers (limit_viewers)`);
    const asking = { stream: name, client };
    this.#asking.add(asking);
    let session: ViewSession;
    try {
      session = await this.engine.view(publisher.session, offer);
    } catch (error) {
      this.slots.give();
      throw error;
    } finally {
      this.#asking.delete(asking);
    }
    this.#viewers.set(session.id, { stream: name, client, session });
    this.log.info({ stream: name, viewer: session.id }, 'viewer joined');
    this.safeEmit('joined', { stream: name, viewerId: session.id });
    session.on('closed', (reason) => {
      this.#viewers.delete(session.id);
      this.slots.give();
      this.log.info({ stream: name, viewer: session.id, reason }, 'viewer left');
      this.safeEmit('left', { stream: name, viewerId: session.id, reason });
    });
    return { id: session.id, answer: session.answer };
  }

  /** Ends viewer `id` of stream `name`; false when there is none. */
  async end(name: string, id: string, reason: string): Promise<boolean> {
    const viewer = this.#viewers.get(id);
    if (!viewer || viewer.stream !== name) return false;
    await viewer.session.close(reason);
    return true;
  }

  /** Viewers of one stream (those whose offers are being answered too), or of all. */
  count(name?: string): number {
    if (name === undefined) return this.#viewers.size;
    return this.#of((v) => v.stream === name);
  }

  #ofClient(name: string, client: string): number {
    return this.#of((v) => v.stream === name && v.client === client);
  }

  #of(matches: (viewer: { stream: string; client: string }) => boolean): number {
    let count = 0;
    for (const viewer of this.#viewers.values()) if (matches(viewer)) count++;
    for (const viewer of this.#asking) if (matches(viewer)) count++;
    return count;
  }

  /**
   * A caption for the viewers of stream `name` that opened a data channel: `{text, final}` as JSON,
   * after `delayMs` (a caption placed ahead of now), when the viewer shows the frames it goes on.
   */
  caption(name: string, caption: { text: string; final: boolean }, delayMs: number): void {
    const send = (): void => {
      const message = JSON.stringify(caption);
      for (const viewer of this.#viewers.values()) if (viewer.stream === name) viewer.session.send('captions', message);
    };
    if (delayMs <= 0) send();
    else setTimeout(send, delayMs).unref();
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.#viewers.values()].map((v) => v.session.close(reason)));
  }
}
