import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
/** A node as placement weighs it: what its last heartbeat told, and when it was written (local clock). */
export interface WeighedNode {
  id: string;
  publishers: number;
  transponders: number;
  /** When the node wrote the heartbeat these counts come from. */
  heardAt: number;
}

/**
 * Where this node's next publish goes among the open nodes: the least loaded, this node first on a
 * tie. A node's load is its publishers (then its pushes) as its last heartbeat told, plus the
 * publishes this node placed there that the heartbeat cannot have counted: those still on their
 * way (not answered yet) and those answered after it was written. So a burst of publishes is spread
 * over the nodes rather than all sent to the one that was least loaded a heartbeat ago. The time a
 * publish was answered, not the time it was sent, is what a heartbeat is compared with: a
 * heartbeat written while the offer was on its way does not count it.
 */
export class Placement {
  /** When publishes placed at each node were answered there; Infinity while not answered yet. */
  readonly #answeredAt = new Map<string, number[]>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: Placement): void {
    trackSize('cluster_answered', owner, (self) => self.#answeredAt.size);
  }

  constructor(private readonly self: string) {
    Placement.#trackSizes(this);
  }

  /** The node chosen among `open` (`known`: every node listed); the choice counts in its load until `answered`. */
  choose<N extends WeighedNode>(open: readonly N[], known: readonly WeighedNode[]): N {
    const uncounted = (n: WeighedNode): number => {
      const since = (this.#answeredAt.get(n.id) ?? []).filter((at) => at > n.heardAt);
      this.#answeredAt.set(n.id, since);
      return since.length;
    };
    const loads = new Map(open.map((n) => [n, (n.publishers + uncounted(n)) * 1000 + n.transponders]));
    const least = Math.min(...loads.values());
    const chosen =
      open.find((n) => n.id === this.self && loads.get(n) === least) ?? open.find((n) => loads.get(n) === least)!;
    for (const id of this.#answeredAt.keys()) if (!known.some((n) => n.id === id)) this.#answeredAt.delete(id);
    this.#answeredAt.set(chosen.id, [...(this.#answeredAt.get(chosen.id) ?? []), Infinity]);
    return chosen;
  }

  /** A publish placed at node `id` was answered there (it counts until a heartbeat after now), or failed (it does not). */
  answered(id: string, published: boolean, now = monotonicMs()): void {
    const times = this.#answeredAt.get(id);
    const pending = times?.indexOf(Infinity) ?? -1;
    if (!times || pending < 0) return;
    if (published) times[pending] = now;
    else times.splice(pending, 1);
  }
}
