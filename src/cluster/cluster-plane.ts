import type { Logger } from 'pino';
import { mixerStream } from '../mixers/requests.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import type { ArgsOf, ResultOf, RoutedMethod } from '../plane/methods.js';
import type { MediaPlane, Negotiated, PlaneStatus, PublishHandlers } from '../plane/plane.js';
import { RoutedPlane } from '../plane/routed-plane.js';
import type { PushChange } from '../pushes/changes.js';
import { CallRouting } from './call-routing.js';
import { drain } from './drain.js';
import { ForwardedPublishes } from './forwarded-publishes.js';
import { HeldStreams } from './held-streams.js';
import { KnownNodes } from './known-nodes.js';
import { ClusterNews } from './news.js';
import { NodeCalls } from './node-calls.js';
import { NodeChoice } from './node-choice.js';
import type { ClusterNode } from './node.js';

/**
 * The plane of a node of a cluster: the node's own plane (this thread or its workers) inside a
 * cluster of them on Redis. It puts together:
 *
 * - **Choice of a node** (`NodeChoice`). A publish may arrive at any node. It goes to the node that
 *   holds its stream already, else to the least-loaded node that takes new work, as the nodes this
 *   node knows (`KnownNodes`) tell it.
 * - **Placed publishes** (`ForwardedPublishes`). Another node is sent the offer and its answer is
 *   returned: the media then flows to that node's ICE addresses, and what happens to the publish
 *   there is told back, as the handlers of a local publish are. Each is held by its node's record
 *   (`KnownNode`), and lost with that node.
 * - **Ownership** (`HeldStreams`). The node that publishes a stream first claims it in Redis, so
 *   that no two nodes serve one stream.
 * - **Calls** (`CallRouting`). Every other call works on every node, routed as between worker
 *   threads: to the node that holds the stream or has the push, or gathered from every node.
 * - **Drain** (`drain`). A rolling deploy moves each stream of the node to the others.
 * - **Changes** (`ClusterNews`). Push changes (what the SDK's sessions and the console follow) are
 *   told to every node. Lifecycle events stay with the node where they happen: webhooks are sent
 *   once, by it.
 */
export class ClusterPlane extends RoutedPlane implements MediaPlane {
  readonly calls: NodeCalls;
  readonly #held: HeldStreams;
  readonly #news: ClusterNews;
  readonly #nodes: KnownNodes;
  readonly #forwarded: ForwardedPublishes;
  readonly #choice: NodeChoice;
  readonly #routing: CallRouting;
  #closing: Promise<void> | undefined;

  constructor(
    /** This node's own plane: what answers the calls of other nodes. */
    readonly inner: MediaPlane,
    readonly node: ClusterNode,
    private readonly log: Logger,
  ) {
    super();
    this.calls = new NodeCalls(node.secret, node.id, node.boot);
    this.#held = new HeldStreams(inner, node, log);
    this.#news = new ClusterNews(inner, node);
    this.#nodes = new KnownNodes(node.registry, (gone, reason, lost) => {
      if (lost.length)
        log.warn(
          { node: gone.id, reason, publisherIds: lost.map((publish) => publish.id) },
          'the node publishes were placed at is gone: their publishers are lost',
        );
    });
    this.#forwarded = new ForwardedPublishes(node, this.#nodes, this.#held);
    this.#choice = new NodeChoice(node, this.#nodes, this.calls, this.#held, log);
    this.#routing = new CallRouting(inner, node, this.#nodes, this.calls, log);
  }

  async publish(
    name: string,
    offer: string,
    handlers: PublishHandlers = {},
    clientAddress?: string,
  ): Promise<Negotiated> {
    // A draining node still places the publishes of its SDK sessions: at other nodes.
    const { value: published, node } = await this.#choice.run(
      name,
      'publish',
      (target) => this.calls.publish(target, name, offer, clientAddress),
      () => this.#held.publish(name, offer, handlers, clientAddress),
    );
    if (node) this.#forwarded.add(node, published.id, handlers);
    return published;
  }

  /**
   * A mixer is placed as a publish of its stream: at the node holding a stream of that name (which
   * refuses it), else at the least loaded. Its stream is claimed there like a publisher's.
   */
  override async mixerStartup(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    const { value } = await this.#choice.run(
      mixerStream(request),
      'mixer',
      (target) => this.calls.call(target, 'mixerStartup', [request]),
      () => this.#held.mixerStartup(request),
    );
    return value;
  }

  /** Starts a mixer on this node, its stream claimed first (a call of another node's too). */
  mixerStartupHere(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    return this.#held.mixerStartup(request);
  }

  /** A publish placed here by node `from`: published here, with what happens to it told back to `from`. */
  publishFor(from: string, name: string, offer: string, clientAddress?: string): Promise<Negotiated> {
    return this.#forwarded.publishFor(from, name, offer, clientAddress);
  }

  /** Sends a routed call where the table says: the stream's node, the push's node, or every node. */
  protected route<M extends RoutedMethod>(method: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    return this.#routing.route(method, args);
  }

  /** Drains this node (a rolling deploy), until nothing is left here or `deadline` (`drain.ts`). */
  drain(deadline: number): Promise<{ moved: number; left: number }> {
    return drain({ inner: this.inner, node: this.node, held: this.#held, log: this.log }, deadline);
  }

  /** This node drains and another places the stream's publisher: the stream is given up here now. */
  handOver(name: string): Promise<void> {
    return this.#held.handOver(name);
  }

  /** Follows the push changes of every node. */
  watch(listener: (change: PushChange) => void): () => void {
    return this.#news.watch(listener);
  }

  /**
   * Every node's lifecycle events, with the node each happened at: for watching (the console).
   * What acts on an event (webhooks, kept pushes) follows `events`, so that it acts once.
   */
  watchEvents(listener: (event: LifecycleEvent, node: string) => void): () => void {
    return this.#news.watchEvents(listener);
  }

  /** This node's lifecycle events: each event is told by the node where it happens. */
  events(listener: (event: LifecycleEvent) => void): () => void {
    return this.inner.events(listener);
  }

  status(): PlaneStatus {
    return this.inner.status();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#forwarded.close();
      this.#held.close();
      this.#news.close();
      await this.inner.close();
      await this.node.stop();
    })();
    return this.#closing;
  }

  killChildren(): void {
    this.inner.killChildren();
  }
}
