import type { Logger } from 'pino';
import { conflict, unavailable } from '../core/errors.js';
import { mixerStream } from '../mixers/requests.js';
import type { ArgsOf, ResultOf } from '../plane/methods.js';
import type { MediaPlane, Negotiated, PublishHandlers } from '../plane/plane.js';
import { isActive } from '../pushes/states.js';
import { Settling } from './claims.js';
import { NodeDraining } from './node-calls.js';
import type { ClusterNode } from './node.js';

/**
 * The streams this node serves, each claimed in Redis so that no two nodes serve one (and push it
 * twice to one destination). Work that publishes a stream here (a publish, a mixer) claims it
 * first: one held elsewhere is refused (409, naming the node), and while Redis cannot be reached
 * new work is refused (503) and everything running goes on. A claim is given up once nothing of
 * its stream is left here; a claim lost to another node ends the stream here.
 */
export class HeldStreams {
  readonly #stop: () => void;

  constructor(
    /** This node's own plane. */
    private readonly inner: MediaPlane,
    private readonly node: ClusterNode,
    private readonly log: Logger,
  ) {
    this.#stop = inner.events((event) => {
      if (
        event.type === 'publisher.ended' ||
        event.type === 'publisher.lost' ||
        event.type === 'transponder.stopped' ||
        event.type === 'transponder.failed'
      ) {
        void this.#releaseIfUnused(event.stream);
      }
    });
    // Another node holds the stream now: it ends here (told as lost, so its kept pushes stay kept: the holder runs them).
    node.onLost = (stream, holder) => void this.move(stream, `node ${holder ?? 'another node'} holds the stream now`);
  }

  /** Publishes `name` on this node, its stream claimed first. */
  async publish(name: string, offer: string, handlers: PublishHandlers, clientAddress?: string): Promise<Negotiated> {
    await this.#claim(name, 'it takes no new publish');
    try {
      return await this.inner.publish(name, offer, handlers, clientAddress);
    } catch (error) {
      void this.#releaseIfUnused(name);
      throw error;
    }
  }

  /** Starts a mixer on this node, its stream claimed first. */
  async mixerStartup(request: ArgsOf<'mixerStartup'>[0]): Promise<ResultOf<'mixerStartup'>> {
    const stream = mixerStream(request);
    await this.#claim(stream, 'it starts no new mixer');
    try {
      return await this.inner.mixerStartup(request);
    } catch (error) {
      void this.#releaseIfUnused(stream);
      throw error;
    }
  }

  /** This node drains and another node takes the stream's publisher: the stream is given up here now. */
  async handOver(name: string): Promise<void> {
    if (!this.node.draining) throw conflict('this node is not draining: it keeps its streams');
    await this.move(name, 'this node is draining: published again at another node');
  }

  /**
   * Ends the stream here as lost (its kept pushes stay kept, its publisher publishes again) and gives it up.
   * Its pushes end together, each once its ffmpeg has exited, before the publisher is told: their
   * destinations are free for the node it publishes at next.
   */
  async move(stream: string, reason: string): Promise<void> {
    const pushes = await this.inner.find({ streamName: stream });
    await Promise.all(pushes.map((push) => this.inner.terminate(push.mediaSessionId).catch(() => {})));
    await this.inner.unpublish(stream, undefined, reason, true).catch(() => false);
    await this.node.claims.release(stream).catch(() => {});
  }

  close(): void {
    this.#stop();
  }

  /** Claims stream `name` for this node; a draining node refuses (`refusal`), its stream, if it has it, handed over. */
  async #claim(name: string, refusal: string): Promise<void> {
    if (this.node.draining) {
      // Sent here by a node that had not heard yet: the stream (if this node has it) is handed over, and the work goes elsewhere.
      if (this.node.claims.held.has(name)) await this.handOver(name);
      throw new NodeDraining(refusal);
    }
    let claim;
    try {
      claim = await this.node.claims.claim(name);
    } catch (error) {
      if (error instanceof Settling) throw unavailable(`${error.message}: try again`, Math.ceil(error.leaseMs / 1000));
      throw unavailable(
        `the cluster's Redis cannot be reached (${(error as Error).message}): no new publish until it can`,
      );
    }
    if (!claim.mine) throw conflict(`stream ${name} is published at node ${claim.node}`);
  }

  /** Gives the stream's claim up once nothing of it is left here. */
  async #releaseIfUnused(stream: string): Promise<void> {
    if (!this.node.claims.held.has(stream)) return;
    const [streams, pushes] = await Promise.all([this.inner.streams(stream), this.inner.find({ streamName: stream })]);
    if (streams.length || pushes.some((p) => isActive(p.state))) return;
    await this.node.claims
      .release(stream)
      .catch((error: Error) =>
        this.log.warn({ stream, reason: error.message }, 'a claim could not be given up: it ends with its lease'),
      );
  }
}
