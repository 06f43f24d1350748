import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Sealer } from '../security/seal.js';
import type { PushStore, StoredPush } from '../store/push-log.js';
import { soundRequestSchema, startupSchema, type StartupRequest } from '../pushes/requests.js';

/**
 * What a kept push is asked to be, sealed in the store: its startup request and its audio as
 * commanded since. Read back from the store, it is parsed whole: the store is written by other
 * nodes and other versions, and holds bytes, not types.
 */
const definitionSchema = z.strictObject({
  request: startupSchema,
  muted: z.boolean(),
  sound: soundRequestSchema.optional(),
});
export type Definition = z.infer<typeof definitionSchema>;

/** A push this node knows to be kept. */
export interface Kept {
  stored: Omit<StoredPush, 'sealed'>;
  definition: Definition;
  /** Since when it has had no live push (after a restart, its stream away), or undefined while it has one. */
  awaySince?: number;
}

/** What the store keeps of a startup, checked where it arrived: the request, its audio apart. */
export function definitionOf(request: StartupRequest): Definition {
  const { options, ...rest } = request;
  const { action, soundFile, ...sound } = options ?? {};
  return {
    request: rest,
    muted: action === 'mute',
    // The startup's schema holds a sound_on to its soundFile.
    ...(action === 'sound_on' && soundFile !== undefined ? { sound: { soundFile, ...sound } } : {}),
  };
}

/** The startup that starts a kept push again as it was last commanded (its sound played, else its mute). */
export function startupOf({ request, muted, sound }: Definition): StartupRequest {
  const options = sound ? { action: 'sound_on' as const, ...sound } : muted ? { action: 'mute' as const } : undefined;
  return { ...request, ...(options ? { options } : {}) };
}

/** Which part of the store to read: all of it, a stream's pushes, or one push. */
type StorePart = { stream: string } | { id: string } | 'all';

/**
 * What this node knows of the push store (`store/`): the kept pushes, read from it and written to
 * it. The store is the truth (in a cluster other nodes keep and forget pushes too): what is read
 * replaces what this node knew of that part, but a push being written is not forgotten for not
 * being there yet.
 */
export class PushMirror {
  readonly #kept = new Map<string, Kept>();
  /** Pushes started whose record is being written. */
  readonly #writing = new Set<string>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: PushMirror): void {
    trackSize('kept_pushes', owner, (self) => self.#kept.size);
    trackSize('kept_pushes_writing', owner, (self) => self.#writing.size);
  }

  constructor(
    private readonly store: PushStore,
    private readonly sealer: Sealer,
    private readonly log: Logger,
  ) {
    PushMirror.#trackSizes(this);
  }

  get size(): number {
    return this.#kept.size;
  }

  get(id: string): Kept | undefined {
    return this.#kept.get(id);
  }

  has(id: string): boolean {
    return this.#kept.has(id);
  }

  /** Every kept push, by id. */
  entries(): IterableIterator<[string, Kept]> {
    return this.#kept.entries();
  }

  values(): IterableIterator<Kept> {
    return this.#kept.values();
  }

  /** Keeps a push just started: known at once, written to the store; not kept when it cannot be written. */
  async add(kept: Kept): Promise<void> {
    const { id } = kept.stored;
    this.#kept.set(id, kept);
    this.#writing.add(id);
    try {
      await this.write(kept);
    } catch (error) {
      this.#kept.delete(id);
      throw error;
    } finally {
      this.#writing.delete(id);
    }
  }

  /** Writes a kept push (again): its record, its definition sealed. */
  write(kept: Kept): Promise<void> {
    return this.store.put({ ...kept.stored, sealed: this.sealer.seal(kept.definition) });
  }

  /** Forgets a kept push, here and in the store, for `why` (logged). */
  async forget(id: string, why: string): Promise<void> {
    const kept = this.#kept.get(id);
    if (!kept) return;
    this.#kept.delete(id);
    this.log.info({ mediaSessionId: id, stream: kept.stored.stream, why }, 'kept push forgotten');
    await this.store
      .remove(id)
      .catch((error: Error) =>
        this.log.error({ mediaSessionId: id, reason: error.message }, 'a push could not be removed from the store'),
      );
  }

  /**
   * Reads the store, all of it or the part `of` names. Pushes new to this node wait for their
   * stream; those gone from the store are forgotten here too.
   */
  async read(of: StorePart = 'all'): Promise<void> {
    const stored =
      of === 'all'
        ? await this.store.all()
        : 'stream' in of
          ? await this.store.ofStream(of.stream)
          : [await this.store.get(of.id)].filter((s) => s !== undefined);
    const ids = new Set(stored.map((s) => s.id));
    const within = (id: string, kept: Kept): boolean =>
      of === 'all' || ('stream' in of ? kept.stored.stream === of.stream : id === of.id);
    for (const [id, kept] of this.#kept)
      if (within(id, kept) && !ids.has(id) && !this.#writing.has(id)) this.#kept.delete(id);
    const now = monotonicMs();
    for (const { sealed, ...record } of stored) {
      if (this.#kept.has(record.id)) continue;
      try {
        const definition = definitionSchema.parse(this.sealer.open(sealed));
        this.#kept.set(record.id, { stored: record, definition, awaySince: now });
      } catch (error) {
        this.log.error(
          { mediaSessionId: record.id, stream: record.stream, reason: (error as Error).message },
          'a kept push cannot be read (another push_store secret?): left in the store, not started',
        );
      }
    }
  }

  /** Reads the store (the part `of` names), or goes on with what this node knows when it cannot be read now. */
  async fresh(of: { stream: string } | { id: string }): Promise<void> {
    await this.read(of).catch((error: Error) =>
      this.log.warn({ reason: error.message }, 'the push store cannot be read now'),
    );
  }

  /** Closes the store; what it keeps stays kept. */
  close(): Promise<void> {
    return this.store.close();
  }
}
