import { MessagePort } from 'node:worker_threads';
import { z } from 'zod';
import { captionAtSchema, captionResultSchema, captionTextSchema } from '../captions/request.js';
import { streamJsonSchema } from '../publishers/description.js';
import { pushInfoSchema, sheddableSchema } from '../pushes/info.js';
import { findFilterSchema, mediaSessionIdSchema, soundRequestSchema, startupSchema } from '../pushes/requests.js';
import {
  mixerAudioVideoSchema,
  mixerInfoSchema,
  mixerInputSchema,
  mixerLabelSchema,
  mixerLayoutSchema,
  mixerRemoveSchema,
  mixerStartupSchema,
  mixerUriSchema,
} from '../mixers/requests.js';

/**
 * Which holder answers a call, when there are several: the worker threads of a gateway, the nodes of
 * a cluster. A holder is the thread or node that holds a stream (its publisher, its pushes, the
 * mixers that publish it):
 * - `stream`: the holder of the stream `key` names;
 * - `session`: the holder that told of the push `key` names;
 * - `gather`: with a key, as `stream`; without one, every holder, the lists joined oldest first;
 * - `mixer`: the holder running the mixer whose URI `key` names (the plane records where it started it);
 * - `own`: the plane handles it itself (choosing the holder of a new publish, closing every holder).
 * A key held nowhere goes to any holder, which holds nothing of it and answers so (404, false, []).
 */
export type RouteTo = 'stream' | 'session' | 'gather' | 'mixer';
type Route<A> = { to: RouteTo; key: (args: A) => string | undefined } | { to: 'own' };

interface MethodSpec<A extends z.ZodTuple, R extends z.ZodType> {
  args: A;
  result: R;
  route: Route<z.output<A>>;
}

const method = <A extends z.ZodTuple, R extends z.ZodType>(spec: MethodSpec<A, R>): MethodSpec<A, R> => spec;

const streamName = z.string().min(1).max(256);
const nothing = z.void();

/**
 * What a holder of streams answers: each method once, with the schemas of its arguments and
 * its result. The local plane implements them; the worker wire and the cluster's calls between
 * nodes are driven from this table: arguments are parsed where they arrive from another process
 * (`answerCall`; a worker thread takes them as typed, `answerTypedCall`), results where they come
 * back. Adding a method is one entry here and its implementation in `LocalPlane`.
 */
export const HOLDER_METHODS = {
  /** Starts a publish from an SDP offer (the client's address last); the publisher's id and the SDP answer. */
  publish: method({
    args: z.tuple([streamName, z.string().min(1), z.string().optional()]),
    result: z.strictObject({ id: z.string(), answer: z.string() }),
    route: { to: 'own' },
  }),
  /** Ends the publish `id` of `name` (WHIP DELETE, the SDK's unpublish) with a reason, lost or not; false when there is none. */
  unpublish: method({
    args: z.tuple([streamName, z.string().optional(), z.string(), z.boolean().optional()]),
    result: z.boolean(),
    route: { to: 'stream', key: ([name]) => name },
  }),
  /** Publishing streams (one, by name), with their pushes' ids. */
  streams: method({
    args: z.tuple([streamName.optional()]),
    result: z.array(streamJsonSchema),
    route: { to: 'gather', key: ([name]) => name },
  }),
  /**
   * The stream's latest keyframe as a JPEG, at most as wide as the second argument says (its own
   * size without); 404 when it is not publishing or has no keyframe yet.
   */
  snapshot: method({
    args: z.tuple([streamName, z.number().int().min(16).max(8192).optional()]),
    // A Buffer crosses between threads as a Uint8Array.
    result: z
      .instanceof(Uint8Array)
      .transform((bytes): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    route: { to: 'stream', key: ([name]) => name },
  }),
  /**
   * A caption (CEA-608) for every push of the stream (interim when the third argument is false),
   * placed on the frames captured now or at the stream's media time given fourth; 404 when the
   * stream is not publishing.
   */
  caption: method({
    args: z.tuple([streamName, captionTextSchema, z.boolean().optional(), captionAtSchema.optional()]),
    result: captionResultSchema,
    route: { to: 'stream', key: ([name]) => name },
  }),
  /**
   * A viewer of the stream (WHEP) from its SDP offer and its client's address: the viewer's id and
   * the SDP answer.
   */
  view: method({
    args: z.tuple([streamName, z.string().min(1), z.string().min(1).max(128)]),
    result: z.strictObject({ id: z.string(), answer: z.string() }),
    route: { to: 'stream', key: ([name]) => name },
  }),
  /** Ends viewer `id` of the stream (WHEP DELETE); false when there is none. */
  endView: method({
    args: z.tuple([streamName, z.string().min(1).max(128)]),
    result: z.boolean(),
    route: { to: 'stream', key: ([name]) => name },
  }),
  /** Starts a push (`/rest-api/push/startup`); a kept push started again gives its id. */
  startup: method({
    args: z.tuple([startupSchema, mediaSessionIdSchema.optional()]),
    result: pushInfoSchema,
    route: { to: 'stream', key: ([request]) => request.streamName },
  }),
  /** Pushes by stream or destination, oldest first. */
  find: method({
    args: z.tuple([findFilterSchema]),
    result: z.array(pushInfoSchema),
    route: { to: 'gather', key: ([filter]) => filter.streamName },
  }),
  terminate: method({
    args: z.tuple([mediaSessionIdSchema]),
    result: nothing,
    route: { to: 'session', key: ([id]) => id },
  }),
  setMuted: method({
    args: z.tuple([mediaSessionIdSchema, z.boolean()]),
    result: nothing,
    route: { to: 'session', key: ([id]) => id },
  }),
  soundOn: method({
    args: z.tuple([mediaSessionIdSchema, soundRequestSchema]),
    result: nothing,
    route: { to: 'session', key: ([id]) => id },
  }),
  soundOff: method({
    args: z.tuple([mediaSessionIdSchema]),
    result: nothing,
    route: { to: 'session', key: ([id]) => id },
  }),
  /** Every push as the machine's shedder weighs it (`Shedder`), oldest first. */
  sheddable: method({
    args: z.tuple([]),
    result: z.array(sheddableSchema),
    route: { to: 'gather', key: () => undefined },
  }),
  /** Ends the push's output to leave a saturated machine's CPU to the others, with why; false when it is not running. */
  shed: method({
    args: z.tuple([mediaSessionIdSchema, z.string().min(1).max(1000)]),
    result: z.boolean(),
    route: { to: 'session', key: ([id]) => id },
  }),
  /** The load has passed: a shed push opens its output again; false when it was not shed (or is gone). */
  unshed: method({
    args: z.tuple([mediaSessionIdSchema]),
    result: z.boolean(),
    route: { to: 'session', key: ([id]) => id },
  }),
  /** Starts a mixer (`/rest-api/mixer/startup`), which publishes its stream where it runs; its calls go there. */
  mixerStartup: method({
    args: z.tuple([mixerStartupSchema]),
    result: mixerInfoSchema,
    route: { to: 'mixer', key: ([request]) => request.uri },
  }),
  /** Adds an input; with a port, one whose media comes from another worker thread (`relayStream`). */
  mixerAdd: method({
    args: z.tuple([mixerInputSchema, z.instanceof(MessagePort).optional()]),
    result: mixerInfoSchema,
    route: { to: 'mixer', key: ([request]) => request.uri },
  }),
  mixerRemove: method({
    args: z.tuple([mixerRemoveSchema]),
    result: mixerInfoSchema,
    route: { to: 'mixer', key: ([request]) => request.uri },
  }),
  mixerLayout: method({
    args: z.tuple([mixerLayoutSchema]),
    result: mixerInfoSchema,
    route: { to: 'mixer', key: ([request]) => request.uri },
  }),
  mixerLabel: method({
    args: z.tuple([mixerLabelSchema]),
    result: mixerInfoSchema,
    route: { to: 'mixer', key: ([request]) => request.uri },
  }),
  mixerAudioVideo: method({
    args: z.tuple([mixerAudioVideoSchema]),
    result: mixerInfoSchema,
    route: { to: 'mixer', key: ([request]) => request.uri },
  }),
  /** Every mixer, oldest first. */
  mixerFind: method({
    args: z.tuple([]),
    result: z.array(mixerInfoSchema),
    route: { to: 'gather', key: () => undefined },
  }),
  /** Ends the mixer `uri`; with `createdAt`, only the mixer started then (not one started since under the same URI). */
  mixerTerminate: method({
    args: z.tuple([mixerUriSchema, z.iso.datetime().optional()]),
    result: nothing,
    route: { to: 'mixer', key: ([uri]) => uri },
  }),
  /** Sends a stream's media to a mixer in another worker thread over the port; false when it does not publish here. */
  relayStream: method({
    args: z.tuple([streamName, z.instanceof(MessagePort)]),
    result: z.boolean(),
    route: { to: 'own' },
  }),
  /** Ends every stream of the holder, then the holder. */
  close: method({
    args: z.tuple([]),
    result: nothing,
    route: { to: 'own' },
  }),
};

export type HolderMethod = keyof typeof HOLDER_METHODS;
export type ArgsOf<M extends HolderMethod> = z.output<(typeof HOLDER_METHODS)[M]['args']>;
export type ResultOf<M extends HolderMethod> = z.output<(typeof HOLDER_METHODS)[M]['result']>;
/** Every method of the table, as a holder implements it. */
export type HolderCalls = { [M in HolderMethod]: (...args: ArgsOf<M>) => Promise<ResultOf<M>> };

/** The methods whose route is `own`, named again for the types (checked against the table below). */
const OWN_METHODS = ['publish', 'relayStream', 'close'] as const;
export type RoutedMethod = Exclude<HolderMethod, (typeof OWN_METHODS)[number]>;
/** The methods a plane routes to a holder by the table. */
export const ROUTED_METHODS = (Object.keys(HOLDER_METHODS) as HolderMethod[]).filter(
  (m) => HOLDER_METHODS[m].route.to !== 'own',
) as RoutedMethod[];
if (
  ROUTED_METHODS.length + OWN_METHODS.length !== Object.keys(HOLDER_METHODS).length ||
  ROUTED_METHODS.some((m) => (OWN_METHODS as readonly string[]).includes(m))
) {
  throw new Error(`OWN_METHODS (${OWN_METHODS.join(', ')}) must name exactly the methods routed 'own'`);
}
export type RoutedCalls = Pick<HolderCalls, RoutedMethod>;

function isHolderMethod(name: unknown): name is HolderMethod {
  return typeof name === 'string' && Object.hasOwn(HOLDER_METHODS, name);
}

/** The routed methods of `plane`, bound to it. */
export function routedTo(plane: RoutedCalls): RoutedCalls {
  return Object.fromEntries(
    ROUTED_METHODS.map((m) => [m, (plane[m] as (...args: unknown[]) => Promise<unknown>).bind(plane)]),
  ) as unknown as RoutedCalls;
}

/** A `gather` call's answers from several holders as one: their lists joined, oldest first. */
export function oldestFirst(lists: unknown[]): unknown[] {
  return (lists as { createdAt: string }[][]).flat().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/**
 * Calls `method` of `holder` with arguments that came from another process (a node of the cluster),
 * parsed against the table first: they arrive as JSON, maybe from another version of the gateway,
 * and the parse is what makes them the table's types.
 */
export async function answerCall(holder: HolderCalls, method: unknown, args: unknown): Promise<unknown> {
  if (!isHolderMethod(method)) throw new Error(`no holder method ${String(method)}`);
  const checked = HOLDER_METHODS[method].args.parse(args) as unknown[];
  return (holder[method] as (...a: unknown[]) => Promise<unknown>)(...checked);
}

/**
 * Calls `method` of `holder` with arguments the caller typed: a call from the main thread to a worker
 * thread of the same build (`wire.ts`'s `Call`, `ArgsOf<M>`), whose arguments were parsed where they
 * entered the gateway (a REST body by its route's schema, an SDK message, the push store or the
 * mixers' file read back, a cluster node's call by `answerCall`) and carried as the schemas' output
 * types; structured cloning keeps plain data as it was. They are not parsed again (a startup's whole
 * schema, say): what is checked is what the dispatch needs, that the method is one of the table's
 * own (not a property every object has) and that the arguments are a list.
 */
export async function answerTypedCall(holder: HolderCalls, method: unknown, args: unknown): Promise<unknown> {
  if (!isHolderMethod(method)) throw new Error(`no holder method ${String(method)}`);
  if (!Array.isArray(args)) throw new Error(`${method}: its arguments are not a list`);
  return (holder[method] as (...a: unknown[]) => Promise<unknown>)(...(args as unknown[]));
}

/** A result that came back from elsewhere, checked against the table. */
export function checkResult<M extends HolderMethod>(method: M, value: unknown): ResultOf<M> {
  return HOLDER_METHODS[method].result.parse(value) as ResultOf<M>;
}
