import { OpenError } from '../links/failures.js';
import type { LinkFactory } from '../links/link.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { PushFeed } from './feed.js';
import type { LinkSlot } from './link-slot.js';

/** What an attempt opens the output with, and what it asks of the push's life. */
export interface AttemptParts {
  readonly slot: LinkSlot;
  readonly feed: PushFeed;
  readonly links: LinkFactory;
  /** Whether the output is still to be opened: the push is starting, or restoring it. */
  wanted(): boolean;
  /** Why the output was last lost: what the attempt says when a half it opened is gone again. */
  lastError(): string | undefined;
}

/**
 * One attempt at opening a push's output (the push's life, `life.ts`, makes one at a time and
 * decides what its failure leads to): it opens what is missing, the link and the pipeline side by
 * side, starts feeding them and waits for the pipeline's first output and, for a link that
 * connects once media flows (SRT), for the destination to take it. `first`: the push's start, rather
 * than a restore of an output that broke.
 */
export class Attempt {
  /** The pipeline it started and has not used yet (it waits for the link). */
  #pipe: Pipeline | undefined;

  constructor(
    private readonly parts: AttemptParts,
    private readonly first: boolean,
  ) {}

  /**
   * Resolves once the output is open, or no longer wanted. Throws an `OpenError`; closes what it
   * opened when it fails or is no longer wanted.
   */
  async run(): Promise<void> {
    const { slot, feed, links } = this.parts;
    const [linked, piped] = await Promise.allSettled([
      slot.link ? undefined : links(!this.first, feed.videoFourCcs),
      feed.current ? undefined : this.#startPipeline(),
    ]);
    this.#pipe = undefined;
    const link = linked.status === 'fulfilled' ? linked.value : undefined;
    const pipe = piped.status === 'fulfilled' ? piped.value : undefined;
    if (linked.status === 'rejected' || piped.status === 'rejected' || !this.parts.wanted()) {
      await Promise.all([link?.close(), pipe?.close()]);
      if (linked.status === 'rejected') throw linked.reason;
      if (piped.status === 'rejected') throw new OpenError((piped.reason as Error).message, 'local');
      return;
    }
    if (link) slot.use(link);
    if (pipe) feed.use(pipe);
    feed.attach(this.first);
    try {
      // The pipeline owns the deadline of its first output (ffmpeg_start_timeout_ms): one timer, one kind of failure.
      await feed.current?.output;
    } catch (error) {
      throw error instanceof OpenError ? error : new OpenError((error as Error).message, 'local');
    }
    if (!this.parts.wanted()) return;
    // A link that connects once media flows (SRT) is up when the destination took it.
    if (link?.connected) {
      try {
        await link.connected;
      } catch (error) {
        if (slot.link === link) await slot.drop();
        throw error;
      }
    }
    if (!this.parts.wanted()) return;
    const lastError = this.parts.lastError();
    if (!slot.link) throw new OpenError(lastError ?? 'the destination connection was lost', 'unreachable');
    if (!feed.current) throw new OpenError(lastError ?? 'ffmpeg ended', 'local');
  }

  /**
   * The attempt is no longer wanted (the push ended or failed): the pipeline it started is closed
   * now, not when the link's attempt ends, which can take its whole connect timeout.
   */
  abandon(): void {
    void this.#pipe?.close();
  }

  /** The attempt's pipeline: ffmpeg starts beside the link. */
  async #startPipeline(): Promise<Pipeline> {
    const pipe = await this.parts.feed.startPipeline();
    if (this.parts.wanted()) this.#pipe = pipe;
    else void pipe.close();
    return pipe;
  }
}
