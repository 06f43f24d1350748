import { monotonicMs } from '../core/clock.js';
import type { NodeAddress } from './node-calls.js';
import type { ListedNode } from './nodes.js';

/** What this node has running at another (a publish placed there), which ends with that node. */
export interface AtNode {
  /** Its id, as the logs name it. */
  readonly id: string;
  /** The node it runs at is gone: it is lost. */
  lost(reason: string): void;
}

/**
 * A node of the cluster as this node knows it, itself included: what its latest heartbeat told,
 * and what this node has running there. It holds that (`hold`) until each ends by itself, or
 * until the node is gone (`gone`: left the list, or listed again for another run), when all of it
 * is lost at once and whoever keeps the node is told once.
 *
 * Its load, by which a new publish chooses a node: its publishers (then its pushes) as its last
 * heartbeat told, plus the publishes sent to it that the heartbeat cannot have counted: those still
 * on their way (not answered yet) and those answered after it was written. So a burst of publishes
 * is spread over the nodes rather than all sent to the one that was least loaded a heartbeat ago.
 * The time a publish was answered, not the time it was sent, is what a heartbeat is compared with:
 * a heartbeat written while the offer was on its way does not count it.
 */
export class KnownNode implements NodeAddress {
  #info: ListedNode;
  /** When its last heartbeat was written, by this process's clock. */
  #heardAt = 0;
  /** When the publishes sent to it were answered; Infinity while not answered yet. */
  #answeredAt: number[] = [];
  /** What runs there for this node. */
  readonly #held = new Set<AtNode>();
  /** Why it is gone, once it is. */
  #gone: string | undefined;

  constructor(
    info: ListedNode,
    /** Told once, when the node is gone, with what was lost with it. */
    private readonly onGone: (node: KnownNode, reason: string, lost: AtNode[]) => void,
    now = monotonicMs(),
  ) {
    this.#info = info;
    this.heard(info, now);
  }

  get id(): string {
    return this.#info.id;
  }
  get url(): string {
    return this.#info.url;
  }
  /** Its run (absent for a node of an earlier release): another run is another node. */
  get boot(): string | undefined {
    return this.#info.boot;
  }
  /** What its latest heartbeat told. */
  get info(): ListedNode {
    return this.#info;
  }

  /** A heartbeat of the node, as the registry listed it at `now`. */
  heard(info: ListedNode, now = monotonicMs()): void {
    this.#info = info;
    this.#heardAt = now - info.heardAgoMs;
  }

  /** Its load (publishers first, then pushes), counting the publishes its last heartbeat cannot have counted. */
  load(): number {
    this.#answeredAt = this.#answeredAt.filter((at) => at > this.#heardAt);
    return (this.#info.publishers + this.#answeredAt.length) * 1000 + this.#info.transponders;
  }

  /** A publish is sent to it: it counts in its load until `answered` says how it went. */
  sent(): void {
    this.#answeredAt.push(Infinity);
  }

  /** A publish sent to it was answered (it counts until a heartbeat after now), or failed (it does not). */
  answered(published: boolean, now = monotonicMs()): void {
    const pending = this.#answeredAt.indexOf(Infinity);
    if (pending < 0) return;
    if (published) this.#answeredAt[pending] = now;
    else this.#answeredAt.splice(pending, 1);
  }

  /**
   * Holds `what`, running there, until it ends by itself (it calls the function returned) or the
   * node is gone (`what.lost`; at once if it is gone already).
   */
  hold(what: AtNode): () => void {
    if (this.#gone !== undefined) {
      what.lost(this.#gone);
      return () => {};
    }
    this.#held.add(what);
    return () => this.#held.delete(what);
  }

  /** The node is gone: what runs there is lost, all of it now, and `onGone` is told once. */
  gone(reason: string): void {
    if (this.#gone !== undefined) return;
    this.#gone = reason;
    const lost = [...this.#held];
    this.#held.clear();
    this.#answeredAt = [];
    for (const what of lost) what.lost(reason);
    this.onGone(this, reason, lost);
  }
}
