import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
import { KnownNode, type AtNode } from './known-node.js';
import type { ListedNode, NodeRegistry } from './nodes.js';

/**
 * The nodes of the cluster as this node knows them (`KnownNode`, itself included), from the
 * registry's list: read at most once a second, or now when asked `fresh`. A node that leaves the
 * list, or comes back in it as another run, is gone: its record is told so (it ends what ran there)
 * and tells this list once, which forgets it. While Redis cannot be read the last list read goes on
 * being used, and no node is gone: calls between nodes need no Redis, so lists still gather every
 * node, and calls still reach theirs.
 */
export class KnownNodes {
  readonly #nodes = new Map<string, KnownNode>();
  #read: { at: number; list: Promise<KnownNode[]> } | undefined;
  /** The last list read from Redis. */
  #last: KnownNode[] = [];
  /** Reads started, and the latest one whose list was taken: an older read answering late is not. */
  #reads = 0;
  #taken = 0;

  /** Counts its map in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: KnownNodes): void {
    trackSize('cluster_known_nodes', owner, (self) => self.#nodes.size);
  }

  constructor(
    private readonly registry: Pick<NodeRegistry, 'list'>,
    /** Told once for each node gone, with what this node had running there (lost with it). */
    private readonly onGone: (node: KnownNode, reason: string, lost: AtNode[]) => void,
  ) {
    KnownNodes.#trackSizes(this);
  }

  /** The nodes, read at most once a second, or now when `fresh` (a choice of node goes by the latest heartbeats). */
  list(fresh = false): Promise<KnownNode[]> {
    if (fresh || !this.#read || monotonicMs() - this.#read.at > 1000) {
      const read = ++this.#reads;
      const list = this.registry.list().then(
        (listed) => {
          if (read > this.#taken) {
            this.#taken = read;
            this.#last = this.#take(listed);
          }
          return this.#last;
        },
        () => {
          this.#read = undefined; // read again at the next call
          return this.#last;
        },
      );
      this.#read = { at: monotonicMs(), list };
    }
    return this.#read.list;
  }

  /** The records of the nodes `listed`; those of nodes not listed, or listed for another run, are gone. */
  #take(listed: ListedNode[]): KnownNode[] {
    const now = monotonicMs();
    const ids = new Set(listed.map((info) => info.id));
    for (const node of this.#nodes.values()) if (!ids.has(node.id)) node.gone(`node ${node.id} is gone`);
    return listed.map((info) => {
      const known = this.#nodes.get(info.id);
      if (known && known.boot === info.boot) {
        known.heard(info, now);
        return known;
      }
      known?.gone(`node ${info.id} started again`);
      const node = new KnownNode(info, (gone, reason, lost) => this.#forget(gone, reason, lost), now);
      this.#nodes.set(info.id, node);
      return node;
    });
  }

  #forget(node: KnownNode, reason: string, lost: AtNode[]): void {
    if (this.#nodes.get(node.id) === node) this.#nodes.delete(node.id);
    this.onGone(node, reason, lost);
  }
}
