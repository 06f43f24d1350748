import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { Sealer } from '../security/seal.js';
import { answerCall, checkResult, PLACE_METHODS, ROUTED_METHODS, type ArgsOf, type PlaceCalls, type PlaceMethod, type ResultOf, type RoutedCalls } from '../plane/methods.js';
import { fromWire, toWire, type WireError } from '../plane/wire.js';

/** How far a call's time may be from the receiver's clock, and how long its nonce is remembered. */
const WINDOW_MS = 30_000;

interface SealedCall {
  from: string;
  /** The node the call is for: any other refuses it, so a call captured on its way cannot be played to another node. */
  to: string;
  method: string;
  args: unknown;
  at: number;
  nonce: string;
}
type SealedReply = { ok: unknown } | { error: WireError };

/** Buffers (a snapshot) cross as base64. */
const replacer = (_key: string, value: unknown): unknown =>
  value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)
    ? { $bytes: Buffer.from((value as { data: number[] }).data).toString('base64') }
    : value;
const reviver = (_key: string, value: unknown): unknown =>
  value && typeof value === 'object' && typeof (value as { $bytes?: unknown }).$bytes === 'string' ? Buffer.from((value as { $bytes: string }).$bytes, 'base64') : value;

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

/** A node as a call reaches it: its id (which the call names) and its API's URL. */
export interface NodeAddress {
  id: string;
  url: string;
}

/**
 * Calls between the nodes of a cluster: a method of `PLACE_METHODS` and its arguments, sent to the
 * node that holds the stream or the push. Calls and replies are sealed with the cluster's secret
 * (AES-256-GCM): only a node with the secret can make one, and a stream key in the arguments of a
 * forwarded startup is never in the clear between nodes. A call carries its time and a nonce: one
 * older than 30 s, seen before, or meant for another node (each call names its target) is refused.
 * Arguments are checked against the table where they
 * arrive, results where they come back.
 */
export class NodeCalls {
  readonly #sealer: Sealer;
  /** Nonces seen within the window, with when they expire. */
  readonly #seen = new Map<string, number>();

  constructor(
    secret: string,
    readonly node: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.#sealer = new Sealer(secret, 'calls between nodes');
  }

  /** Calls `method` at node `to`; its result, or its error as a `GatewayError`. */
  async call<M extends PlaceMethod>(to: NodeAddress, method: M, args: unknown[]): Promise<ResultOf<M>> {
    return checkResult(method, await this.#send(to, method, args));
  }

  /** Places a publish at node `to`: it publishes the stream there and tells this node what happens to it (`NodeRelay`). */
  async publish(to: NodeAddress, name: string, offer: string, clientAddress?: string): Promise<ResultOf<'publish'>> {
    return this.call(to, 'publish', [name, offer, clientAddress]);
  }

  /** Asks the draining node `to` to give stream `name` up now: its publisher is being placed elsewhere. */
  async handOver(to: NodeAddress, name: string): Promise<void> {
    await this.#send(to, 'handOver' as PlaceMethod, [name]);
  }

  async #send(to: NodeAddress, method: PlaceMethod, args: unknown[]): Promise<unknown> {
    const { url } = to;
    const call: SealedCall = { from: this.node, to: to.id, method, args, at: Date.now(), nonce: randomUUID() };
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
    if (!response.ok || typeof body?.sealed !== 'string') throw new GatewayError('unavailable', `node at ${url} answered ${response.status}`);
    const reply = JSON.parse(JSON.stringify(this.#sealer.open(body.sealed)), reviver) as SealedReply;
    if ('error' in reply) throw fromWire(reply.error);
    return reply.ok;
  }

  /**
   * Answers a sealed call with `place` (this node's own plane): the sealed reply. Only the routed
   * methods are answered (never `close`), and `publish`, placed here by node `from`, with `publish`.
   * Throws `unauthorized` for a call it cannot trust.
   */
  async answer(
    place: RoutedCalls,
    sealed: unknown,
    own: { publish: (from: string, ...args: ArgsOf<'publish'>) => Promise<ResultOf<'publish'>>; handOver: (name: string) => Promise<void> },
  ): Promise<string> {
    let call: SealedCall;
    try {
      if (typeof sealed !== 'string') throw new Error('no sealed call');
      call = JSON.parse(JSON.stringify(this.#sealer.open(sealed)), reviver) as SealedCall;
    } catch {
      throw new GatewayError('unauthorized', 'not a call of a node of this cluster');
    }
    const now = Date.now();
    for (const [nonce, expires] of this.#seen) if (expires < now) this.#seen.delete(nonce);
    if (typeof call.at !== 'number' || Math.abs(now - call.at) > WINDOW_MS) throw new GatewayError('unauthorized', 'a call too old, or from a clock too far off');
    if (call.to !== this.node) throw new GatewayError('unauthorized', 'a call meant for another node');
    if (typeof call.nonce !== 'string' || this.#seen.has(call.nonce)) throw new GatewayError('unauthorized', 'a call made before');
    this.#seen.set(call.nonce, now + 2 * WINDOW_MS);
    let reply: SealedReply;
    try {
      if (call.method === 'publish') reply = { ok: await own.publish(call.from, ...PLACE_METHODS.publish.args.parse(call.args)) };
      else if (call.method === 'handOver') reply = { ok: await own.handOver(z.tuple([z.string().min(1).max(256)]).parse(call.args)[0]) };
      else if (!(ROUTED_METHODS as string[]).includes(call.method)) throw new GatewayError('invalid_request', `${String(call.method)} is not answered for another node`);
      else reply = { ok: await answerCall(place as PlaceCalls, call.method, call.args) };
    } catch (error) {
      reply = { error: toWire(error instanceof Error && error.name === 'ZodError' ? new GatewayError('invalid_request', `a call whose arguments this node does not read: ${error.message}`) : error) };
    }
    return this.#sealer.seal(JSON.parse(JSON.stringify(reply, replacer)));
  }
}
