import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
import type { Logger } from 'pino';
import { conflict, GatewayError, unavailable } from '../core/errors.js';
import type { ClusterNode } from './node.js';
import { Settling } from './claims.js';
import type { ListedNode } from './nodes.js';
import type { PushChange } from '../pushes/changes.js';
import { isActive } from '../pushes/states.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import {
  checkResult,
  oldestFirst,
  PLACE_METHODS,
  type ArgsOf,
  type ResultOf,
  type RoutedMethod,
} from '../plane/methods.js';
import { RoutedPlane } from '../plane/routed-plane.js';
import { firstAnswer, NodeCalls, NodeDraining, NodeUnreachable } from './node-calls.js';
import { ClusterNews, readPublishNews, type PublishNews } from './news.js';
import type { MediaPlane, PlaneStatus, Negotiated, PublishHandlers } from '../plane/plane.js';
import { Placement } from './placement.js';
import { pollUntil } from '../core/events.js';
import { mixerStream } from '../mixers/requests.js';
import { callerOf } from '../mixers/callers.js';

/** A listed node, with when it was last heard by this process's clock. */
type KnownNode = ListedNode & { heardAt: number };

/** News of a publish that came before its answer: kept this long for it. */
const EARLY_NEWS_MS = 30_000;

/**
 * The plane of a node of a cluster: the node's own plane (this thread or its workers) inside a
 * cluster of them on Redis.
 *
 * - **Placement.** A publish may arrive at any node. It goes to the node that holds its stream
 *   already (pushes waiting there for it), else to the least-loaded node that takes new work
 *   (fewest publishers, then pushes; this node on a tie). Another node is sent the offer and its
 *   answer is returned: the media then flows to that node's ICE addresses, and what happens to the
 *   publish there is told back (`NodeRelay`), as the handlers of a local publish are.
 * - **Ownership.** The node that publishes a stream first claims it in Redis, so that no two
 *   nodes serve one stream (and push it twice to one destination): one held elsewhere is refused
 *   (409, naming the node). While Redis cannot be reached new publishes are refused (503) and
 *   everything running goes on. A claim is given up once nothing of the stream is left on its
 *   node; a claim lost to another node ends the stream there.
 * - **Calls.** Every other call works on every node, routed by `PLACE_METHODS` as between worker
 *   threads: a call for a stream to the node that holds it, a call for a push to the node that has
 *   it, a list gathered from every node. Calls are sealed (`NodeCalls`) and answered by the
 *   receiving node's own plane, so they go one hop.
 * - **Changes.** Push changes (what the SDK's sessions and the console follow) are told to every
 *   node. Lifecycle events stay with the node where they happen: webhooks are sent once, by it.
 */
export class ClusterPlane extends RoutedPlane implements MediaPlane {
  readonly calls: NodeCalls;
  readonly #stop: (() => void)[] = [];
  readonly #news: ClusterNews;
  /** Publishes this node placed at another node, by publisher id. */
  readonly #placed = new Map<string, { node: string; handlers: PublishHandlers }>();
  /** News of placed publishes whose answer had not come yet. */
  readonly #early = new Map<string, { at: number; news: PublishNews[] }>();
  readonly #watchdog: NodeJS.Timeout;
  #closing: Promise<void> | undefined;
  /** The node list, read at most once a second. */
  #nodes: { at: number; list: Promise<KnownNode[]> } | undefined;
  /** The last node list read from Redis. */
  #lastList: KnownNode[] = [];
  /** The least-loaded choice, counting the publishes placed since each node's heartbeat. */
  readonly #placement: Placement;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: ClusterPlane): void {
    trackSize('cluster_placed', owner, (self) => self.#placed.size);
    trackSize('cluster_early_news', owner, (self) => self.#early.size);
  }

  constructor(
    /** This node's own plane: what answers the calls of other nodes. */
    readonly inner: MediaPlane,
    readonly node: ClusterNode,
    private readonly log: Logger,
  ) {
    super();
    ClusterPlane.#trackSizes(this);
    this.calls = new NodeCalls(node.secret, node.id, node.boot);
    this.#placement = new Placement(node.id);
    this.#stop.push(
      inner.events((event) => {
        if (
          event.type === 'publisher.ended' ||
          event.type === 'publisher.lost' ||
          event.type === 'transponder.stopped' ||
          event.type === 'transponder.failed'
        ) {
          void this.#releaseIfUnused(event.stream);
        }
      }),
    );
    this.#news = new ClusterNews(inner, node);
    this.#stop.push(() => this.#news.close());
    node.relay.onMessage = (message) => {
      const news = readPublishNews(message);
      if (news) this.#placedNews(news);
    };
    // Another node holds the stream now: it ends here (told as lost, so its kept pushes stay kept: the holder runs them).
    node.onLost = (stream, holder) => void this.#move(stream, `node ${holder ?? 'another node'} holds the stream now`);
    // A node that dies tells nothing: its placed publishes are lost once it is gone from the list.
    this.#watchdog = setInterval(() => void this.#checkPlaced(), node.config.heartbeat_ms);
    this.#watchdog.unref();
  }

  async publish(
    name: string,
    offer: string,
    handlers: PublishHandlers = {},
    clientAddress?: string,
  ): Promise<Negotiated> {
    // A draining node still places the publishes of its SDK sessions: at other nodes.
    const { value: published, node } = await this.#place(
      name,
      'publish',
      (target) => this.calls.publish(target, name, offer, clientAddress),
      () => this.publishHere(name, offer, handlers, clientAddress),
    );
    if (node === undefined) return published;
    this.#placed.set(published.id, { node, handlers });
    const early = this.#early.get(published.id);
    this.#early.delete(published.id);
    for (const news of early?.news ?? []) this.#placedNews(news);
    return published;
  }

  /**
   * A mixer is placed as a publish of its stream: at the node holding a stream of that name (which
   * refuses it), else at the least loaded. Its stream is claimed there like a publisher's.
   */
  override async mixerStartup(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    const stream = mixerStream(request);
    const { value } = await this.#place(
      stream,
      'mixer',
      (target) => this.calls.call(target, 'mixerStartup', [request]),
      () => this.mixerStartupHere(request),
    );
    return value;
  }

  /** Starts a mixer on this node, its stream claimed first (a call of another node's too). */
  async mixerStartupHere(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    const stream = mixerStream(request);
    await this.#claimHere(stream, 'it starts no new mixer');
    try {
      return await this.inner.mixerStartup(request);
    } catch (error) {
      void this.#releaseIfUnused(stream);
      throw error;
    }
  }

  /**
   * Runs `what` for stream `name` at the node it is placed at (`#placeFor`): `there` at another
   * node, `here` on this one; the node it ran at (undefined: here). A node that began draining
   * since the list was read refuses it (handing the stream over), and one that is gone (killed,
   * its registration not yet timed out) never got it: it is placed again, elsewhere.
   */
  async #place<T>(
    name: string,
    what: string,
    there: (node: ListedNode) => Promise<T>,
    here: () => Promise<T>,
  ): Promise<{ value: T; node?: string }> {
    let place = await this.#placeFor(name);
    const refused = new Set<string>();
    while (place.node) {
      const target = place.node;
      this.log.info({ stream: name, node: target.id }, `${what} placed at another node`);
      try {
        return { value: await this.#told(place.counted && target.id, there(target)), node: target.id };
      } catch (error) {
        const draining = error instanceof NodeDraining;
        if (!draining && !(error instanceof NodeUnreachable)) throw error;
        if (!draining)
          this.log.warn(
            { stream: name, node: target.id, reason: (error as Error).message },
            `the node a ${what} was placed at is gone: placed again`,
          );
        this.#nodes = undefined;
        refused.add(target.id);
        place = await this.#placeFor(name, refused);
      }
    }
    return { value: await this.#told(place.counted && this.node.id, here()) };
  }

  /** `publishing`, told to the placement as the answer of node `counted` (false: it placed nothing there). */
  async #told<T>(counted: string | false, publishing: Promise<T>): Promise<T> {
    try {
      const answer = await publishing;
      if (counted) this.#placement.answered(counted, true);
      return answer;
    } catch (error) {
      if (counted) this.#placement.answered(counted, false);
      throw error;
    }
  }

  /** Publishes `name` on this node, its stream claimed first. */
  async publishHere(
    name: string,
    offer: string,
    handlers: PublishHandlers = {},
    clientAddress?: string,
  ): Promise<Negotiated> {
    await this.#claimHere(name, 'it takes no new publish');
    try {
      return await this.inner.publish(name, offer, handlers, clientAddress);
    } catch (error) {
      void this.#releaseIfUnused(name);
      throw error;
    }
  }

  /** Claims stream `name` for this node; a draining node refuses (`refusal`), its stream, if it has it, handed over. */
  async #claimHere(name: string, refusal: string): Promise<void> {
    if (this.node.draining) {
      // Placed here by a node that had not heard yet: the stream (if this node has it) is handed over, and the work goes elsewhere.
      if (this.node.claims.held.has(name))
        await this.#move(name, 'this node is draining: published again at another node');
      throw new NodeDraining(refusal);
    }
    let claim;
    try {
      claim = await this.node.claims.claim(name);
    } catch (error) {
      if (error instanceof Settling) throw unavailable(`${error.message}: try again`, Math.ceil(error.leaseMs / 1000));
      throw unavailable(
        `the cluster's Redis cannot be reached (${(error as Error).message}): no new publish until it can`,
      );
    }
    if (!claim.mine) throw conflict(`stream ${name} is published at node ${claim.node}`);
  }

  /** A publish placed here by node `from`: published here, with what happens to it told back to `from`. */
  async publishFor(from: string, name: string, offer: string, clientAddress?: string): Promise<Negotiated> {
    let id: string | undefined;
    const waiting: PublishNews[] = [];
    const tell = (news: PublishNews): void => {
      if (id === undefined) waiting.push(news);
      else this.node.relay.send(from, news);
    };
    const published = await this.publishHere(
      name,
      offer,
      {
        publishing: () => tell({ kind: 'publishing', publisherId: id ?? '' }),
        closed: (reason, lost) => tell({ kind: 'closed', publisherId: id ?? '', reason, lost }),
      },
      clientAddress,
    );
    id = published.id;
    for (const news of waiting) this.node.relay.send(from, { ...news, publisherId: id });
    return published;
  }

  /**
   * Where a publish of `name` goes: the node holding the stream, else the least loaded that takes
   * work; `node` undefined for this node. A holder that drains hands the stream over first.
   * `counted`: the choice counts in the node's load until `Placement.answered` says how it went.
   */
  async #placeFor(
    name: string,
    refused: ReadonlySet<string> = new Set(),
  ): Promise<{ node: ListedNode | undefined; counted: boolean }> {
    let claim = await this.node.claims.holder(name).catch(() => undefined);
    const nodes = (await this.#list(true)).filter((n) => !refused.has(n.id));
    const holder = claim && nodes.find((n) => n.id === claim!.node);
    if (holder?.draining && holder.id !== this.node.id) {
      await this.calls
        .handOver(holder, name)
        .catch((error: Error) =>
          this.log.warn(
            { stream: name, node: holder.id, reason: error.message },
            'a draining node did not hand the stream over',
          ),
        );
      claim = await this.node.claims.holder(name).catch(() => undefined);
    } else if (claim?.node === this.node.id && this.node.draining) {
      await this.handOver(name);
      claim = undefined;
    }
    if (claim)
      return {
        node: claim.node === this.node.id ? undefined : nodes.find((n) => n.id === claim!.node),
        counted: false,
      };
    const open = nodes.filter(
      (n) => !n.draining && n.overload === undefined && !(n.id === this.node.id && this.node.draining),
    );
    if (!open.length) return { node: undefined, counted: false }; // here, which refuses it if it is draining
    // A caller of a room (`user1#room1`) goes where its room's mixer runs: a mixer takes the streams of its node.
    const room = callerOf(name)?.room;
    const roomNode = room === undefined ? undefined : await this.node.claims.holder(room).catch(() => undefined);
    const roomHolder = roomNode && open.find((n) => n.id === roomNode.node);
    if (roomHolder) return { node: roomHolder.id === this.node.id ? undefined : roomHolder, counted: true };
    const chosen = this.#placement.choose(open, nodes);
    return { node: chosen.id === this.node.id ? undefined : chosen, counted: true };
  }

  #placedNews(news: PublishNews): void {
    const placed = this.#placed.get(news.publisherId);
    if (!placed) {
      const now = monotonicMs();
      for (const [id, early] of this.#early) if (now - early.at > EARLY_NEWS_MS) this.#early.delete(id);
      const early = this.#early.get(news.publisherId) ?? { at: now, news: [] };
      early.news.push(news);
      this.#early.set(news.publisherId, early);
      return;
    }
    if (news.kind === 'publishing') placed.handlers.publishing?.();
    else {
      this.#placed.delete(news.publisherId);
      placed.handlers.closed?.(news.reason, news.lost);
    }
  }

  async #checkPlaced(): Promise<void> {
    if (!this.#placed.size) return;
    const alive = new Set(
      (await this.node.registry.list().catch(() => undefined))?.map((n) => n.id) ??
        [...this.#placed.values()].map((p) => p.node),
    );
    for (const [id, placed] of this.#placed) {
      if (alive.has(placed.node)) continue;
      this.#placed.delete(id);
      this.log.warn(
        { node: placed.node, publisherId: id },
        'the node a publish was placed at is gone: its publisher is lost',
      );
      placed.handlers.closed?.(`node ${placed.node} is gone`, true);
    }
  }

  /** Sends a routed call where the table says: the stream's node, the push's node, or every node. */
  protected async route<M extends RoutedMethod>(method: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    const route = PLACE_METHODS[method].route;
    if (route.to === 'own') throw new Error(`${method} is not routed`);
    const key = (route.key as (args: unknown[]) => string | undefined)(args);
    const local = (): Promise<ResultOf<M>> =>
      (this.inner[method] as (...a: unknown[]) => Promise<ResultOf<M>>)(...args);
    const remote = (node: ListedNode): Promise<ResultOf<M>> => this.calls.call(node, method, args);
    const others = await this.#others();
    if (route.to === 'stream' || (route.to === 'gather' && key !== undefined)) {
      const holder = await this.#holder(key!);
      if (holder !== 'unknown') return holder ? remote(holder) : local();
      // Redis cannot tell who holds the stream: whichever node has it answers (a list: every node's, joined).
      if (route.to === 'stream')
        return firstAnswer(
          local,
          others.map((n) => () => remote(n)),
        );
    }
    if (route.to === 'gather') {
      const lists: unknown[] = await Promise.all([
        local(),
        ...others.map((n) =>
          remote(n).catch((error: Error): unknown[] => {
            this.log.warn({ node: n.id, method, reason: error.message }, 'a node did not answer: its part is left out');
            return [];
          }),
        ),
      ]);
      return checkResult(method, oldestFirst(lists));
    }
    // A push: here, or at the node that answers for it. A mixer: the node that runs it (the others
    // answer that there is no mixer of its URI; an error of its input is the answer).
    const notHere =
      route.to === 'mixer'
        ? (error: unknown) => error instanceof GatewayError && error.code === 'not_found' && error.field === 'uri'
        : undefined;
    return firstAnswer(
      local,
      others.map((n) => () => remote(n)),
      notHere,
    );
  }

  /** The node holding `stream` when it is another node (alive); undefined: this node answers; `unknown`: Redis cannot tell. */
  async #holder(stream: string): Promise<ListedNode | undefined | 'unknown'> {
    let claim;
    try {
      claim = await this.node.claims.holder(stream);
    } catch {
      return 'unknown';
    }
    if (!claim || claim.node === this.node.id) return undefined;
    return (await this.#list()).find((n) => n.id === claim.node);
  }

  async #others(): Promise<ListedNode[]> {
    return (await this.#list()).filter((n) => n.id !== this.node.id);
  }

  /**
   * The nodes, read at most once a second, or now when `fresh` (a placement goes by the latest
   * heartbeats). While Redis cannot be read, the last list read goes on being used: calls between
   * nodes need no Redis, so lists still gather every node, and calls still reach theirs.
   */
  #list(fresh = false): Promise<KnownNode[]> {
    if (fresh || !this.#nodes || monotonicMs() - this.#nodes.at > 1000) {
      const list = this.node.registry.list().then(
        (nodes) => (this.#lastList = nodes.map((n) => ({ ...n, heardAt: monotonicMs() - n.heardAgoMs }))),
        () => {
          this.#nodes = undefined; // read again at the next call
          return this.#lastList;
        },
      );
      this.#nodes = { at: monotonicMs(), list };
    }
    return this.#nodes.list;
  }

  /**
   * Drains this node (a rolling deploy): it takes no new work; each stream published here is
   * moved, one at a time: its pushes end here (kept pushes stay kept), its publisher is told to
   * publish again (the SDK does so at once, and is placed at another node, where its pushes start
   * again), and the stream is given up. Resolves once nothing is left here, or at `deadline`.
   */
  async drain(deadline: number): Promise<{ moved: number; left: number }> {
    await this.node.startDraining();
    this.log.info({ node: this.node.id }, 'draining: moving every stream to other nodes');
    let moved = 0;
    for (const stream of await this.inner.streams()) {
      if (monotonicMs() >= deadline) break;
      await this.#move(stream.name, 'this node is draining: publish again at another node');
      const elsewhere = await pollUntil(
        async () => {
          const claim = await this.node.claims.holder(stream.name).catch(() => undefined);
          return claim !== undefined && claim.node !== this.node.id;
        },
        Math.min(deadline, monotonicMs() + 10_000),
      );
      if (elsewhere) moved++;
      this.log.info(
        { stream: stream.name, elsewhere },
        elsewhere ? 'stream moved' : 'stream not published elsewhere in 10 s: going on',
      );
    }
    // Pushes left waiting for a publisher that went away end here too: they start again where it comes back.
    for (const push of await this.inner.find({})) {
      if (isActive(push.state)) await this.#move(push.sourceStreamName, 'this node is draining');
    }
    await pollUntil(
      async () =>
        (await this.inner.streams()).length === 0 && !(await this.inner.find({})).some((p) => isActive(p.state)),
      deadline,
    );
    const left = (await this.inner.streams()).length;
    this.log.info({ moved, left }, 'drained');
    return { moved, left };
  }

  /** This node drains and another places the stream's publisher: the stream is given up here now. */
  async handOver(name: string): Promise<void> {
    if (!this.node.draining) throw conflict('this node is not draining: it keeps its streams');
    await this.#move(name, 'this node is draining: published again at another node');
  }

  /**
   * Ends the stream here as lost (its kept pushes stay kept, its publisher publishes again) and gives it up.
   * Its pushes end together, each once its ffmpeg has exited, before the publisher is told: their
   * destinations are free for the node it publishes at next.
   */
  async #move(stream: string, reason: string): Promise<void> {
    const pushes = await this.inner.find({ streamName: stream });
    await Promise.all(pushes.map((push) => this.inner.terminate(push.mediaSessionId).catch(() => {})));
    await this.inner.unpublish(stream, undefined, reason, true).catch(() => false);
    await this.node.claims.release(stream).catch(() => {});
  }

  /** Gives the stream's claim up once nothing of it is left here. */
  async #releaseIfUnused(stream: string): Promise<void> {
    if (!this.node.claims.held.has(stream)) return;
    const [streams, pushes] = await Promise.all([this.inner.streams(stream), this.inner.find({ streamName: stream })]);
    if (streams.length || pushes.some((p) => isActive(p.state))) return;
    await this.node.claims
      .release(stream)
      .catch((error: Error) =>
        this.log.warn({ stream, reason: error.message }, 'a claim could not be given up: it ends with its lease'),
      );
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
      clearInterval(this.#watchdog);
      for (const stop of this.#stop) stop();
      await this.inner.close();
      await this.node.stop();
    })();
    return this.#closing;
  }

  killChildren(): void {
    this.inner.killChildren();
  }
}
