import { z } from 'zod';
import type { ClusterNode } from './node.js';
import type { PushChange } from '../pushes/changes.js';
import { PUSH_STATES } from '../pushes/states.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import type { MediaPlane } from '../plane/plane.js';
import { LIFECYCLE_EVENTS } from '../core/lifecycle-events.js';

// The messages nodes send each other (`NodeMessenger`), parsed where they arrive: what a node acts on
// is checked, and fields a later release adds are let through (nodes of two releases meet in a
// rolling deploy).

/** A push change (`PushChange`), told to every node. */
const changeNewsSchema = z.looseObject({
  kind: z.literal('change'),
  node: z.string(),
  change: z.looseObject({
    mediaSessionId: z.string(),
    stream: z.string(),
    destination: z.string(),
    state: z.enum(PUSH_STATES),
    previous: z.enum(PUSH_STATES).optional(),
  }),
});
/** A lifecycle event (`LifecycleEvent`), told to every node (for watching: it is acted on where it happens). */
const eventNewsSchema = z.looseObject({
  kind: z.literal('event'),
  node: z.string(),
  event: z.looseObject({ type: z.enum(LIFECYCLE_EVENTS), stream: z.string() }),
});
const broadcastSchema = z.discriminatedUnion('kind', [changeNewsSchema, eventNewsSchema]);
type ChangeNews = { kind: 'change'; node: string; change: PushChange };
type EventNews = { kind: 'event'; node: string; event: LifecycleEvent };

/** What happens to a publish placed at another node, told back to the node that placed it. */
const publishNewsSchema = z.discriminatedUnion('kind', [
  z.looseObject({ kind: z.literal('publishing'), publisherId: z.string() }),
  z.looseObject({ kind: z.literal('closed'), publisherId: z.string(), reason: z.string(), lost: z.boolean() }),
]);
export type PublishNews =
  { kind: 'publishing'; publisherId: string } | { kind: 'closed'; publisherId: string; reason: string; lost: boolean };

/** A message from another node as news of a publish placed there; undefined for anything else. */
export function readPublishNews(message: unknown): PublishNews | undefined {
  const parsed = publishNewsSchema.safeParse(message);
  return parsed.success ? parsed.data : undefined;
}

/**
 * What each node tells every other (`NodeMessenger`): the push changes and lifecycle events of its
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
        node.messenger.broadcast({ kind: 'change', node: node.id, change } satisfies ChangeNews);
      }),
      inner.events((event) => {
        this.#tellEvent(event, node.id);
        node.messenger.broadcast({ kind: 'event', node: node.id, event } satisfies EventNews);
      }),
    ];
    node.messenger.onBroadcast = (message) => {
      const parsed = broadcastSchema.safeParse(message);
      if (!parsed.success || parsed.data.node === node.id) return;
      // Checked above for what is acted on; the rest of the record is the sender's, as it told it.
      const news = parsed.data as ChangeNews | EventNews;
      if (news.kind === 'change') this.#tellChange(news.change);
      else this.#tellEvent(news.event, news.node);
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
