import type { FailureKind } from '../links/failures.js';
import { type Link, type LinkStats, LinkTotals } from '../links/link.js';
import type { TagWriter } from './tag-writer.js';

/** What a push's links sent: the counts of every link so far, and the active link's lag and send buffer. */
export type LinkSlotStats = LinkStats & {
  lagMs: number;
  acknowledgedAt?: number;
  buffer?: { state: string; levelMs: number };
};

export interface LinkSlotOptions {
  /** Whether video is to come: a new link's audio then waits for its first keyframe. */
  videoToCome(): boolean;
  /** The active link broke by itself (one already replaced or dropped is not told). */
  onLost(reason: string, kind: FailureKind): void;
}

/**
 * A push's active link, the one its `TagWriter` writes to: at most one at a time, each new one a
 * new session with the destination; the counts of those that ended are kept.
 */
export class LinkSlot {
  #link: Link | undefined;
  readonly #ended = new LinkTotals();

  constructor(
    private readonly writer: TagWriter,
    private readonly options: LinkSlotOptions,
  ) {}

  /** The active link, if there is one. */
  get link(): Link | undefined {
    return this.#link;
  }

  /** Counts of every link so far, and the active link's lag and send buffer. */
  get stats(): LinkSlotStats {
    return {
      ...this.#ended.with(this.#link?.stats),
      lagMs: this.#link?.lagMs ?? 0,
      acknowledgedAt: this.#link?.acknowledgedAt,
      buffer: this.#link?.buffer,
    };
  }

  /** Makes `link` the active link: a new RTMP session, which starts with headers and a keyframe. */
  use(link: Link): void {
    this.#link = link;
    // Audio waits for the link's first keyframe, if video is to come.
    this.writer.useLink(link.out, this.options.videoToCome());
    link.onLost((reason, kind) => {
      if (this.#link === link) this.options.onLost(reason, kind);
    });
  }

  /** Ends the active link, its counts kept; resolves when its socket is closed. */
  async drop(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    this.writer.dropLink();
    if (!link) return;
    this.#ended.add(link.stats);
    await link.close();
  }
}
