import { trackSize } from '../core/tracked.js';
import { wallClockMs } from '../core/clock.js';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { GatewayError } from '../core/errors.js';
import { Sealer } from '../security/seal.js';
import {
  answerCall,
  checkResult,
  HOLDER_METHODS,
  ROUTED_METHODS,
  type ArgsOf,
  type ResultOf,
  type RoutedCalls,
  type RoutedMethod,
} from '../plane/methods.js';
import { fromWire, toWire, type WireError } from '../plane/wire.js';

/** How far a call's time may be from the receiver's clock, and how long its nonce is remembered. */
const WINDOW_MS = 30_000;

/**
 * What a node answers for another besides the routed methods of the plane's table, checked the same
 * way: arguments where they arrive, results where they come back.
 */
const NODE_METHODS = {
  /** A publish placed here by the calling node (the call's `from`), which is told by message what happens to it. */
  publish: HOLDER_METHODS.publish,
  /** A draining node gives stream `name` up now: its publisher is being placed elsewhere. */
  handOver: { args: z.tuple([z.string().min(1).max(256)]), result: z.void() },
};
type NodeMethod = keyof typeof NODE_METHODS;
/** Every method one node calls at another. */
type CallMethod = RoutedMethod | NodeMethod;
type CallResult<M extends CallMethod> = M extends NodeMethod
  ? z.output<(typeof NODE_METHODS)[M]['result']>
  : ResultOf<M & RoutedMethod>;

const sealedCallSchema = z.object({
  from: z.string(),
  /** The node the call is for: any other refuses it, so a call captured on its way cannot be played to another node. */
  to: z.string(),
  /** The run of that node it is for (`NodeInfo.boot`), when the caller knows it: after a restart it is refused. */
  toBoot: z.string().optional(),
  method: z.string(),
  args: z.unknown(),
  at: z.number(),
  nonce: z.string(),
});
type SealedCall = z.output<typeof sealedCallSchema>;

/**
 * An error as it crosses between nodes. `draining`: the node takes no new work (a rolling deploy);
 * the caller places the work elsewhere. Nodes of the previous release know a draining node only
 * by its message, so the message still begins with DRAINING, and a reply without the flag is read
 * by it too.
 */
type NodeError = WireError & { draining?: true };
const nodeErrorSchema = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
  field: z.string().optional(),
  retryAfterS: z.number().optional(),
  draining: z.literal(true).optional(),
});
// A void result crosses as `{}`: a reply is an error, or anything without one.
const sealedReplySchema = z.union([
  z.object({ error: nodeErrorSchema }),
  z.object({ ok: z.unknown().optional(), error: z.undefined().optional() }),
]);
type SealedReply = { ok: unknown } | { error: NodeError };

/** What a draining node's refusal begins with. */
export const DRAINING = 'this node is draining';

/** A node that takes no new work: what it was asked goes elsewhere. */
export class NodeDraining extends GatewayError {
  constructor(what: string) {
    super('unavailable', `${DRAINING}: ${what}`);
  }
}

/** `error` as the calling node gets it back: a draining refusal as `NodeDraining`, whichever release sent it. */
function nodeError(error: NodeError): Error {
  if (error.code === 'unavailable' && (error.draining || error.message.startsWith(DRAINING)))
    return new NodeDraining(error.message.slice(DRAINING.length + 2));
  return fromWire(error);
}

/** Buffers (a snapshot) cross as base64. */
const replacer = (_key: string, value: unknown): unknown =>
  value &&
  typeof value === 'object' &&
  (value as { type?: unknown }).type === 'Buffer' &&
  Array.isArray((value as { data?: unknown }).data)
    ? { $bytes: Buffer.from((value as { data: number[] }).data).toString('base64') }
    : value;
const reviver = (_key: string, value: unknown): unknown =>
  value && typeof value === 'object' && typeof (value as { $bytes?: unknown }).$bytes === 'string'
    ? Buffer.from((value as { $bytes: string }).$bytes, 'base64')
    : value;

/** Errors that mean the call never reached its node: nothing listens there (it is gone), or its name is not found. */
const NOT_DELIVERED = ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND'];

/**
 * A call that never reached its node: nothing was done there, so it may be made elsewhere. (A call
 * that timed out or broke on the way may have been done: it is a plain `unavailable`.)
 */
export class NodeUnreachable extends GatewayError {
  constructor(url: string, reason: string) {
    super('unavailable', `node at ${url} cannot be reached: ${reason}`);
  }
}

/** A 404: the node has nothing of what was asked. */
const nothingHere = (error: unknown): boolean => error instanceof GatewayError && error.code === 'not_found';

/**
 * This node's answer, or, when it has nothing of what was asked (`notHere`: a 404 by default), the
 * first other node's that has.
 */
export async function firstAnswer<R>(
  local: () => Promise<R>,
  others: (() => Promise<R>)[],
  notHere = nothingHere,
): Promise<R> {
  try {
    return await local();
  } catch (error) {
    if (!notHere(error) || !others.length) throw error;
    const answers = await Promise.allSettled(others.map((ask) => ask()));
    const found = answers.find((a) => a.status === 'fulfilled');
    if (found) return (found as PromiseFulfilledResult<R>).value;
    const failed = answers.find((a) => a.status === 'rejected' && !notHere(a.reason));
    throw failed ? (failed as PromiseRejectedResult).reason : error;
  }
}

/** A node as a call reaches it: its id and its run (which the call names), and its API's URL. */
export interface NodeAddress {
  id: string;
  url: string;
  /** Its run, as the registry lists it; absent for a node of an earlier release. */
  boot?: string;
}

/**
 * Calls between the nodes of a cluster: a method of the plane's table and its arguments, sent to the
 * node that holds the stream or the push. Calls and replies are sealed with the cluster's secret
 * (AES-256-GCM): only a node with the secret can make one, and a stream key in the arguments of a
 * forwarded startup is never in the clear between nodes. A call carries its time and a nonce: one
 * older than 30 s, seen before, or meant for another node (each call names its target) is refused.
 * It names its target's run too: the nonces seen are not kept across a restart, so a call made
 * before one is refused after it, as retryable (`unavailable`: the caller's list was behind).
 * Arguments are checked against the table where they
 * arrive, results where they come back.
 */
export class NodeCalls {
  readonly #sealer: Sealer;
  /** Nonces seen within the window, with when they expire. */
  readonly #seen = new Map<string, number>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: NodeCalls): void {
    trackSize('cluster_nonces_seen', owner, (self) => self.#seen.size);
  }

  constructor(
    secret: string,
    readonly node: string,
    /** This run of the node (`NodeInfo.boot`). */
    readonly boot: string = randomUUID(),
    private readonly timeoutMs = 10_000,
  ) {
    NodeCalls.#trackSizes(this);
    this.#sealer = new Sealer(secret, 'calls between nodes');
  }

  /** Calls `method` at node `to`; its result, or its error as a `GatewayError` (`NodeDraining` from a draining node). */
  async call<M extends CallMethod>(to: NodeAddress, method: M, args: unknown[]): Promise<CallResult<M>> {
    const value = await this.#send(to, method, args);
    if (method === 'handOver') return NODE_METHODS.handOver.result.parse(value) as CallResult<M>;
    return checkResult(method as Exclude<M, 'handOver'>, value) as CallResult<M>;
  }

  /** Places a publish at node `to`: it publishes the stream there and tells this node by message what happens to it. */
  async publish(to: NodeAddress, name: string, offer: string, clientAddress?: string): Promise<ResultOf<'publish'>> {
    return this.call(to, 'publish', [name, offer, clientAddress]);
  }

  /** Asks the draining node `to` to give stream `name` up now: its publisher is being placed elsewhere. */
  async handOver(to: NodeAddress, name: string): Promise<void> {
    await this.call(to, 'handOver', [name]);
  }

  async #send(to: NodeAddress, method: CallMethod, args: unknown[]): Promise<unknown> {
    const { url } = to;
    // JSON has no undefined: a trailing optional argument left out would arrive as null, which the table refuses.
    const given = args.slice(0, args.findLastIndex((arg) => arg !== undefined) + 1);
    const call: SealedCall = {
      from: this.node,
      to: to.id,
      toBoot: to.boot,
      method,
      args: given,
      at: wallClockMs(),
      nonce: randomUUID(),
    };
    let response: Response;
    try {
      response = await fetch(`${url}/internal/plane`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sealed: this.#sealer.seal(JSON.parse(JSON.stringify(call, replacer))) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (code && NOT_DELIVERED.includes(code)) throw new NodeUnreachable(url, code);
      throw new GatewayError('unavailable', `node at ${url} cannot be reached: ${(error as Error).message}`);
    }
    const body = (await response.json().catch(() => undefined)) as { sealed?: string } | undefined;
    if (!response.ok || typeof body?.sealed !== 'string')
      throw new GatewayError('unavailable', `node at ${url} answered ${response.status}`);
    const parsed = sealedReplySchema.safeParse(JSON.parse(JSON.stringify(this.#sealer.open(body.sealed)), reviver));
    if (!parsed.success) throw new GatewayError('unavailable', `node at ${url} answered what is not a reply`);
    const reply = parsed.data as SealedReply;
    if ('error' in reply) throw nodeError(reply.error);
    return reply.ok;
  }

  /**
   * Answers a sealed call with `routed` (this node's own plane): the sealed reply. Only the routed
   * methods are answered (never `close`), and `publish`, placed here by node `from`, with `own.publish`.
   * Throws `unauthorized` for a call it cannot trust.
   */
  async answer(
    routed: RoutedCalls,
    sealed: unknown,
    own: {
      publish: (from: string, ...args: ArgsOf<'publish'>) => Promise<ResultOf<'publish'>>;
      handOver: (name: string) => Promise<void>;
    },
  ): Promise<string> {
    let call: SealedCall;
    try {
      if (typeof sealed !== 'string') throw new Error('no sealed call');
      call = sealedCallSchema.parse(JSON.parse(JSON.stringify(this.#sealer.open(sealed)), reviver));
    } catch {
      throw new GatewayError('unauthorized', 'not a call of a node of this cluster');
    }
    const now = wallClockMs();
    for (const [nonce, expires] of this.#seen) if (expires < now) this.#seen.delete(nonce);
    if (Math.abs(now - call.at) > WINDOW_MS)
      throw new GatewayError('unauthorized', 'a call too old, or from a clock too far off');
    if (call.to !== this.node) throw new GatewayError('unauthorized', 'a call meant for another node');
    // A node of an earlier release names no run. A node whose list is behind may name the run before
    // a restart: retryable, and no failed authentication.
    if (call.toBoot !== undefined && call.toBoot !== this.boot)
      throw new GatewayError('unavailable', 'a call meant for an earlier run of this node', undefined, 1);
    if (this.#seen.has(call.nonce)) throw new GatewayError('unauthorized', 'a call made before');
    this.#seen.set(call.nonce, now + 2 * WINDOW_MS);
    let reply: SealedReply;
    try {
      if (call.method === 'publish')
        reply = { ok: await own.publish(call.from, ...NODE_METHODS.publish.args.parse(call.args)) };
      else if (call.method === 'handOver')
        reply = { ok: await own.handOver(...NODE_METHODS.handOver.args.parse(call.args)) };
      else if (!(ROUTED_METHODS as string[]).includes(call.method))
        throw new GatewayError('invalid_request', `${call.method} is not answered for another node`);
      else reply = { ok: await answerCall(routed as Parameters<typeof answerCall>[0], call.method, call.args) };
    } catch (error) {
      const wire: NodeError = toWire(
        error instanceof Error && error.name === 'ZodError'
          ? new GatewayError('invalid_request', `a call whose arguments this node does not read: ${error.message}`)
          : error,
      );
      reply = { error: error instanceof NodeDraining ? { ...wire, draining: true } : wire };
    }
    return this.#sealer.seal(JSON.parse(JSON.stringify(reply, replacer)));
  }
}
