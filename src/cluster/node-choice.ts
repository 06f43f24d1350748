import type { Logger } from 'pino';
import { callerOf } from '../mixers/callers.js';
import type { HeldStreams } from './held-streams.js';
import type { KnownNode } from './known-node.js';
import type { KnownNodes } from './known-nodes.js';
import { NodeDraining, NodeUnreachable, type NodeCalls } from './node-calls.js';
import type { ClusterNode } from './node.js';

/** The least loaded of `open` (`KnownNode.load`), node `self` first on a tie, then the first listed. */
export function leastLoaded(open: readonly KnownNode[], self: string): KnownNode {
  const loads = new Map(open.map((n) => [n, n.load()]));
  const least = Math.min(...loads.values());
  return open.find((n) => n.id === self && loads.get(n) === least) ?? open.find((n) => loads.get(n) === least)!;
}

/** Where new work for a stream goes: another node (`there`), else this one. */
interface Choice {
  there?: KnownNode;
  /** The node chosen by its load, which counts the work until it is answered. */
  counted?: KnownNode;
}

/** `publishing`, told to `counted` as its answer (it was counted in that node's load when chosen). */
async function told<T>(counted: KnownNode | undefined, publishing: Promise<T>): Promise<T> {
  try {
    const answer = await publishing;
    counted?.answered(true);
    return answer;
  } catch (error) {
    counted?.answered(false);
    throw error;
  }
}

/**
 * Which node new work for a stream (a publish, a mixer) goes to, as it may arrive at any node: the
 * node that holds its stream already (pushes waiting there for it), else the node of its room's
 * mixer for a caller of a room, else the least-loaded node that takes new work (fewest publishers,
 * then pushes; this node on a tie).
 */
export class NodeChoice {
  constructor(
    private readonly node: ClusterNode,
    private readonly nodes: KnownNodes,
    private readonly calls: NodeCalls,
    private readonly held: HeldStreams,
    private readonly log: Logger,
  ) {}

  /**
   * Runs `what` for stream `name` at the node chosen for it: `there` at another node, `here` on
   * this one; the node it ran at (undefined: here). A node that began draining since the list was
   * read refuses it (handing the stream over), and one that is gone (killed, its registration not
   * yet timed out) never got it: it is placed again, elsewhere.
   */
  async run<T>(
    name: string,
    what: string,
    there: (node: KnownNode) => Promise<T>,
    here: () => Promise<T>,
  ): Promise<{ value: T; node?: KnownNode }> {
    let choice = await this.#choose(name);
    const refused = new Set<string>();
    while (choice.there) {
      const target = choice.there;
      this.log.info({ stream: name, node: target.id }, `${what} placed at another node`);
      try {
        return { value: await told(choice.counted, there(target)), node: target };
      } catch (error) {
        const draining = error instanceof NodeDraining;
        if (!draining && !(error instanceof NodeUnreachable)) throw error;
        if (!draining)
          this.log.warn(
            { stream: name, node: target.id, reason: (error as Error).message },
            `the node a ${what} was placed at is gone: placed again`,
          );
        refused.add(target.id);
        choice = await this.#choose(name, refused);
      }
    }
    return { value: await told(choice.counted, here()) };
  }

  /**
   * Where new work for `name` goes, among the nodes listed now less those `refused`. A holder that
   * drains hands the stream over first.
   */
  async #choose(name: string, refused: ReadonlySet<string> = new Set()): Promise<Choice> {
    const self = this.node.id;
    let claim = await this.node.claims.holder(name).catch(() => undefined);
    const nodes = (await this.nodes.list(true)).filter((n) => !refused.has(n.id));
    const holder = claim && nodes.find((n) => n.id === claim!.node);
    if (holder?.info.draining && holder.id !== self) {
      await this.calls
        .handOver(holder, name)
        .catch((error: Error) =>
          this.log.warn(
            { stream: name, node: holder.id, reason: error.message },
            'a draining node did not hand the stream over',
          ),
        );
      claim = await this.node.claims.holder(name).catch(() => undefined);
    } else if (claim?.node === self && this.node.draining) {
      await this.held.handOver(name);
      claim = undefined;
    }
    if (claim) return { there: claim.node === self ? undefined : nodes.find((n) => n.id === claim!.node) };
    const open = nodes.filter(
      (n) => !n.info.draining && n.info.overload === undefined && !(n.id === self && this.node.draining),
    );
    if (!open.length) return {}; // here, which refuses it if it is draining
    // A caller of a room (`user1#room1`) goes where its room's mixer runs: a mixer takes the streams of its node.
    const room = callerOf(name)?.room;
    const roomClaim = room === undefined ? undefined : await this.node.claims.holder(room).catch(() => undefined);
    const chosen = (roomClaim && open.find((n) => n.id === roomClaim.node)) ?? leastLoaded(open, self);
    chosen.sent();
    return { there: chosen.id === self ? undefined : chosen, counted: chosen };
  }
}
