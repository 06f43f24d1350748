import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
import type { Negotiated, PublishHandlers } from '../plane/plane.js';
import type { HeldStreams } from './held-streams.js';
import type { AtNode, KnownNode } from './known-node.js';
import type { KnownNodes } from './known-nodes.js';
import { readPublishNews, type PublishNews } from './news.js';
import type { ClusterNode } from './node.js';

/** News of a publish that came before its answer: kept this long for it. */
const EARLY_NEWS_MS = 30_000;

/** A publish this node placed at another node: its handlers, told what that node tells of it. */
class ForwardedPublish implements AtNode {
  #ended = false;
  readonly #ends: (() => void)[] = [];

  constructor(
    /** Its publisher's id. */
    readonly id: string,
    private readonly handlers: PublishHandlers,
  ) {}

  /** Calls `listener` when it ends, at once if it has. */
  onEnd(listener: () => void): void {
    if (this.#ended) listener();
    else this.#ends.push(listener);
  }

  publishing(): void {
    if (!this.#ended) this.handlers.publishing?.();
  }

  closed(reason: string, lost: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const listener of this.#ends) listener();
    this.handlers.closed?.(reason, lost);
  }

  lost(reason: string): void {
    this.closed(reason, true);
  }
}

/**
 * Publishes placed at another node than the one they arrived at: the offer is sent there and its
 * answer returned, and what happens to the publish there is told back (`NodeMessenger`), as the
 * handlers of a local publish are. Each is held by the record of its node (`KnownNode`): one
 * closed there leaves it, and a node that dies, which tells nothing, loses them all once it is
 * gone from the list, read each heartbeat while any runs.
 */
export class ForwardedPublishes {
  /** The publishes this node placed at other nodes, by publisher id. */
  readonly #publishes = new Map<string, ForwardedPublish>();
  /** News of placed publishes whose answer had not come yet. */
  readonly #early = new Map<string, { at: number; news: PublishNews[] }>();
  readonly #watchdog: NodeJS.Timeout;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: ForwardedPublishes): void {
    trackSize('cluster_forwarded_publishes', owner, (self) => self.#publishes.size);
    trackSize('cluster_early_news', owner, (self) => self.#early.size);
  }

  constructor(
    private readonly node: ClusterNode,
    nodes: KnownNodes,
    private readonly held: HeldStreams,
  ) {
    ForwardedPublishes.#trackSizes(this);
    node.messenger.onMessage = (message) => {
      const news = readPublishNews(message);
      if (news) this.#heard(news);
    };
    this.#watchdog = setInterval(() => {
      if (this.#publishes.size) void nodes.list(true);
    }, node.config.heartbeat_ms);
    this.#watchdog.unref();
  }

  /** Publisher `id` was placed at `node`, which answered: `handlers` are told what `node` tells of it. */
  add(node: KnownNode, id: string, handlers: PublishHandlers): void {
    const publish = new ForwardedPublish(id, handlers);
    this.#publishes.set(id, publish);
    publish.onEnd(() => this.#publishes.delete(id));
    publish.onEnd(node.hold(publish));
    const early = this.#early.get(id);
    this.#early.delete(id);
    for (const news of early?.news ?? []) this.#heard(news);
  }

  /** A publish placed here by node `from`: published here, with what happens to it told back to `from`. */
  async publishFor(from: string, name: string, offer: string, clientAddress?: string): Promise<Negotiated> {
    let id: string | undefined;
    const waiting: PublishNews[] = [];
    const tell = (news: PublishNews): void => {
      if (id === undefined) waiting.push(news);
      else this.node.messenger.send(from, news);
    };
    const published = await this.held.publish(
      name,
      offer,
      {
        publishing: () => tell({ kind: 'publishing', publisherId: id ?? '' }),
        closed: (reason, lost) => tell({ kind: 'closed', publisherId: id ?? '', reason, lost }),
      },
      clientAddress,
    );
    id = published.id;
    for (const news of waiting) this.node.messenger.send(from, { ...news, publisherId: id });
    return published;
  }

  close(): void {
    clearInterval(this.#watchdog);
  }

  #heard(news: PublishNews): void {
    const publish = this.#publishes.get(news.publisherId);
    if (!publish) {
      const now = monotonicMs();
      for (const [id, early] of this.#early) if (now - early.at > EARLY_NEWS_MS) this.#early.delete(id);
      const early = this.#early.get(news.publisherId) ?? { at: now, news: [] };
      early.news.push(news);
      this.#early.set(news.publisherId, early);
      return;
    }
    if (news.kind === 'publishing') publish.publishing();
    else publish.closed(news.reason, news.lost);
  }
}
