import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import {
  checkResult,
  oldestFirst,
  HOLDER_METHODS,
  type ArgsOf,
  type ResultOf,
  type RoutedMethod,
} from '../plane/methods.js';
import type { MediaPlane } from '../plane/plane.js';
import type { KnownNode } from './known-node.js';
import type { KnownNodes } from './known-nodes.js';
import { firstAnswer, type NodeCalls } from './node-calls.js';
import type { ClusterNode } from './node.js';

/**
 * Every call of the plane's table works on every node, routed by its route as between worker
 * threads: a call for a stream to the node that holds it, a call for a push to the node that has
 * it, a list gathered from every node. Calls are sealed (`NodeCalls`) and answered by the receiving
 * node's own plane, so they go one hop.
 */
export class CallRouting {
  constructor(
    /** This node's own plane. */
    private readonly inner: MediaPlane,
    private readonly node: ClusterNode,
    private readonly nodes: KnownNodes,
    private readonly calls: NodeCalls,
    private readonly log: Logger,
  ) {}

  /** Sends a routed call where the table says: the stream's node, the push's node, or every node. */
  async route<M extends RoutedMethod>(method: M, args: ArgsOf<M>): Promise<ResultOf<M>> {
    const route = HOLDER_METHODS[method].route;
    if (route.to === 'own') throw new Error(`${method} is not routed`);
    const key = (route.key as (args: unknown[]) => string | undefined)(args);
    const local = (): Promise<ResultOf<M>> =>
      (this.inner[method] as (...a: unknown[]) => Promise<ResultOf<M>>)(...args);
    const remote = (node: KnownNode): Promise<ResultOf<M>> => this.calls.call(node, method, args);
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
  async #holder(stream: string): Promise<KnownNode | undefined | 'unknown'> {
    let claim;
    try {
      claim = await this.node.claims.holder(stream);
    } catch {
      return 'unknown';
    }
    if (!claim || claim.node === this.node.id) return undefined;
    // A node the list read up to a second ago lacks may have registered since (Redis back after an
    // outage): the list is read again before this node answers for a stream it does not hold.
    const named = (nodes: KnownNode[]): KnownNode | undefined => nodes.find((n) => n.id === claim.node);
    return named(await this.nodes.list()) ?? named(await this.nodes.list(true));
  }

  async #others(): Promise<KnownNode[]> {
    return (await this.nodes.list()).filter((n) => n.id !== this.node.id);
  }
}
