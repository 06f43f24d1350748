import type { Logger } from 'pino';
import { conflict, GatewayError, unavailable } from '../errors.js';
import type { ClusterNode } from '../cluster/node.js';
import type { PushChange } from '../transponders/changes.js';
import { isActive } from '../transponders/states.js';
import type { LifecycleEvent } from './lifecycle.js';
import { checkResult, PLACE_METHODS, ROUTED_METHODS, type PlaceMethod, type RoutedCalls, type RoutedMethod } from './methods.js';
import { NodeCalls } from './node-calls.js';
import type { ListedNode } from '../cluster/nodes.js';
import type { MediaPlane, PlaneStatus, PublishHandlers } from './plane.js';

/**
 * The plane of a node of a cluster: the node's own plane (this thread or its workers), with every
 * stream it serves held by a claim in Redis, so that no two nodes serve one stream (and so push it
 * twice to one destination). A publish first claims its stream: one held by another node is
 * refused (409, naming the node); while Redis cannot be reached, new publishes are refused (503)
 * and everything running goes on. A claim is given up once the node holds nothing of the stream
 * (no publisher, no push waiting for it); a claim lost to another node ends the stream here.
 *
 * Every other call works on every node, routed by `PLACE_METHODS` as the worker plane routes it
 * between threads: a call for a stream goes to the node that holds it, a call for a push to the
 * node that has it, a list is gathered from every node. Calls between nodes are sealed
 * (`NodeCalls`) and answered by the receiving node's own plane, so they go one hop.
 */
// The routed methods are made from `PLACE_METHODS` in the constructor.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface ClusterPlane extends RoutedCalls {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class ClusterPlane implements MediaPlane {
  readonly #stopEvents: () => void;
  readonly calls: NodeCalls;
  #closing: Promise<void> | undefined;
  /** The node list, read at most once a second. */
  #nodes: { at: number; list: Promise<ListedNode[]> } | undefined;

  constructor(
    /** This node's own plane: what answers the calls of other nodes. */
    readonly inner: MediaPlane,
    readonly node: ClusterNode,
    private readonly log: Logger,
  ) {
    this.calls = new NodeCalls(node.secret, node.id);
    for (const method of ROUTED_METHODS) Object.defineProperty(this, method, { value: (...args: unknown[]) => this.#route(method, args) });
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

  /** Sends a routed call where the table says: the stream's node, the push's node, or every node. */
  async #route(method: RoutedMethod, args: unknown[]): Promise<unknown> {
    const route = PLACE_METHODS[method].route;
    if (route.to === 'own') throw new Error(`${method} is not routed`);
    const key = (route.key as (args: unknown[]) => string | undefined)(args);
    const local = (): Promise<unknown> => (this.inner[method] as (...a: unknown[]) => Promise<unknown>)(...args);
    const remote = (node: ListedNode): Promise<unknown> => this.calls.call(node.url, method as PlaceMethod, args);
    if (route.to === 'stream' || (route.to === 'gather' && key !== undefined)) {
      const holder = await this.#holder(key!);
      return holder ? remote(holder) : local();
    }
    const others = await this.#others();
    if (route.to === 'gather') {
      const lists = await Promise.all([
        local(),
        ...others.map((n) =>
          remote(n).catch((error: Error) => {
            this.log.warn({ node: n.id, method, reason: error.message }, 'a node did not answer: its part is left out');
            return [];
          }),
        ),
      ]);
      return checkResult(method, (lists as { createdAt: string }[][]).flat().sort((a, b) => a.createdAt.localeCompare(b.createdAt)));
    }
    // A push: here, or at the node that answers for it.
    try {
      return await local();
    } catch (error) {
      if (!(error instanceof GatewayError && error.code === 'not_found') || !others.length) throw error;
      const answers = await Promise.allSettled(others.map(remote));
      const found = answers.find((a) => a.status === 'fulfilled');
      if (found) return (found as PromiseFulfilledResult<unknown>).value;
      const failed = answers.find((a) => a.status === 'rejected' && !(a.reason instanceof GatewayError && a.reason.code === 'not_found'));
      throw failed ? (failed as PromiseRejectedResult).reason : error;
    }
  }

  /** The node holding `stream` when it is another node (alive), else undefined: this node answers. */
  async #holder(stream: string): Promise<ListedNode | undefined> {
    const claim = await this.node.claims.holder(stream).catch(() => undefined);
    if (!claim || claim.node === this.node.id) return undefined;
    return (await this.#list()).find((n) => n.id === claim.node);
  }

  async #others(): Promise<ListedNode[]> {
    return (await this.#list()).filter((n) => n.id !== this.node.id);
  }

  #list(): Promise<ListedNode[]> {
    if (!this.#nodes || Date.now() - this.#nodes.at > 1000) {
      this.#nodes = { at: Date.now(), list: this.node.registry.list().catch(() => []) };
    }
    return this.#nodes.list;
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
