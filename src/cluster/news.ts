import type { ClusterNode } from './node.js';
import type { PushChange } from '../pushes/changes.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import type { MediaPlane } from '../plane/plane.js';

/** A push change, told to every node. */
type ChangeNews = { kind: 'change'; node: string; change: PushChange };
/** A lifecycle event, told to every node (for watching: it is acted on where it happens). */
type EventNews = { kind: 'event'; node: string; event: LifecycleEvent };

/**
 * What each node tells every other over the relay: the push changes and lifecycle events of its
 * own plane. Heard here with the node they came from, this node's own included.
 */
export class ClusterNews {
  readonly #changes = new Set<(change: PushChange) => void>();
  readonly #events = new Set<(event: LifecycleEvent, node: string) => void>();
  readonly #stop: (() => void)[];

  constructor(inner: MediaPlane, node: ClusterNode) {
    this.#stop = [
      inner.watch((change) => {
        this.#tellChange(change);
        node.relay.broadcast({ kind: 'change', node: node.id, change } satisfies ChangeNews);
      }),
      inner.events((event) => {
        this.#tellEvent(event, node.id);
        node.relay.broadcast({ kind: 'event', node: node.id, event } satisfies EventNews);
      }),
    ];
    node.relay.onBroadcast = (message) => {
      const news = message as ChangeNews | EventNews;
      if (news?.node === node.id) return;
      if (news?.kind === 'change') this.#tellChange(news.change);
      else if (news?.kind === 'event') this.#tellEvent(news.event, news.node);
    };
  }

  /** Follows the push changes of every node. */
  watch(listener: (change: PushChange) => void): () => void {
    this.#changes.add(listener);
    return () => this.#changes.delete(listener);
  }

  /** Follows the lifecycle events of every node, with the node each happened at. */
  watchEvents(listener: (event: LifecycleEvent, node: string) => void): () => void {
    this.#events.add(listener);
    return () => this.#events.delete(listener);
  }

  close(): void {
    for (const stop of this.#stop) stop();
  }

  #tellChange(change: PushChange): void {
    for (const listener of this.#changes) listener(change);
  }

  #tellEvent(event: LifecycleEvent, node: string): void {
    for (const listener of this.#events) listener(event, node);
  }
}
