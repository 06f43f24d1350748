import type { Logger } from 'pino';
import { conflict, unavailable } from '../errors.js';
import type { ClusterNode } from '../cluster/node.js';
import type { PushChange } from '../transponders/changes.js';
import { isActive } from '../transponders/states.js';
import type { LifecycleEvent } from './lifecycle.js';
import { routedTo, type RoutedCalls } from './methods.js';
import type { MediaPlane, PlaneStatus, PublishHandlers } from './plane.js';

/**
 * The plane of a node of a cluster: the node's own plane (this thread or its workers), with every
 * stream it serves held by a claim in Redis, so that no two nodes serve one stream (and so push it
 * twice to one destination). A publish first claims its stream: one held by another node is
 * refused (409, naming the node); while Redis cannot be reached, new publishes are refused (503)
 * and everything running goes on. A claim is given up once the node holds nothing of the stream
 * (no publisher, no push waiting for it); a claim lost to another node ends the stream here.
 */
// The routed methods are the node's own plane's, bound in the constructor.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface ClusterPlane extends RoutedCalls {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class ClusterPlane implements MediaPlane {
  readonly #stopEvents: () => void;
  #closing: Promise<void> | undefined;

  constructor(
    private readonly inner: MediaPlane,
    readonly node: ClusterNode,
    private readonly log: Logger,
  ) {
    Object.assign(this, routedTo(inner));
    this.#stopEvents = inner.events((event) => {
      if (event.type === 'publisher.ended' || event.type === 'publisher.lost' || event.type === 'transponder.stopped' || event.type === 'transponder.failed') {
        void this.#releaseIfUnused(event.stream);
      }
    });
    node.onLost = (stream, holder) => void this.#fence(stream, holder);
  }

  async publish(name: string, offer: string, handlers: PublishHandlers = {}, clientAddress?: string): Promise<{ id: string; answer: string }> {
    if (this.node.draining) throw unavailable('this node is draining: it takes no new publish');
    let claim;
    try {
      claim = await this.node.claims.claim(name);
    } catch (error) {
      throw unavailable(`the cluster's Redis cannot be reached (${(error as Error).message}): no new publish until it can`);
    }
    if (!claim.mine) throw conflict(`stream ${name} is published at node ${claim.node}`);
    try {
      return await this.inner.publish(name, offer, handlers, clientAddress);
    } catch (error) {
      void this.#releaseIfUnused(name);
      throw error;
    }
  }

  /** Gives the stream's claim up once nothing of it is left here. */
  async #releaseIfUnused(stream: string): Promise<void> {
    if (!this.node.claims.held.has(stream)) return;
    const [streams, pushes] = await Promise.all([this.inner.streams(stream), this.inner.find({ streamName: stream })]);
    if (streams.length || pushes.some((p) => isActive(p.state))) return;
    await this.node.claims.release(stream).catch((error: Error) => this.log.warn({ stream, reason: error.message }, 'a claim could not be given up: it ends with its lease'));
  }

  /**
   * Another node holds the stream now: its pushes end here, then its publisher, told as lost (not
   * ended on purpose), so that its kept pushes stay kept: the holder runs them.
   */
  async #fence(stream: string, holder: string | undefined): Promise<void> {
    for (const push of await this.inner.find({ streamName: stream })) await this.inner.terminate(push.mediaSessionId).catch(() => {});
    await this.inner.unpublish(stream, undefined, `node ${holder ?? 'another node'} holds the stream now`, true);
  }

  watch(listener: (change: PushChange) => void): () => void {
    return this.inner.watch(listener);
  }

  events(listener: (event: LifecycleEvent) => void): () => void {
    return this.inner.events(listener);
  }

  status(): PlaneStatus {
    return this.inner.status();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopEvents();
      await this.inner.close();
      await this.node.stop();
    })();
    return this.#closing;
  }

  killChildren(): void {
    this.inner.killChildren();
  }
}
