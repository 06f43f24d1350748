import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { GatewayError, unavailable, type ErrorCode } from '../core/errors.js';
import type { Sealer } from '../security/seal.js';
import type { PushStore, StoredPush } from '../store/push-log.js';
import type { PushInfo } from '../pushes/info.js';
import { soundRequestSchema, startupSchema, type SoundRequest, type StartupRequest } from '../pushes/requests.js';
import type { MediaPlane } from './plane.js';

/** What a kept push is asked to be, sealed in the store: its startup request and its audio as commanded since. */
const definitionSchema = z.strictObject({
  request: startupSchema,
  muted: z.boolean(),
  sound: soundRequestSchema.optional(),
});
type Definition = z.infer<typeof definitionSchema>;

interface Kept {
  stored: Omit<StoredPush, 'sealed'>;
  definition: Definition;
  /** Since when it has had no live push (after a restart, its stream away), or undefined while it has one. */
  awaySince?: number;
}

export interface KeptPushOptions {
  /** A kept push whose stream is not published again within this is forgotten (ms). */
  windowMs: number;
  /** How often pushes are checked against that window (ms). */
  sweepMs?: number;
  /** In a cluster: whether some node holds the stream (a push not live here may be live there). */
  streamHeld?: (stream: string) => Promise<boolean>;
  /** The first wait before a kept push whose destination did not take it is tried again (ms); it doubles, to 30 s. */
  retryMs?: number;
  /** In a cluster: how long after Redis comes back every node alive has registered again (its node timeout, ms). */
  nodesBackMs?: number;
}

/** A startup the destination refused or did not answer: it may take the push a moment later. */
const DESTINATION_CODES: readonly ErrorCode[] = ['destination_refused', 'destination_unreachable'];
/** Refusals that say "not now" (stream gone, gateway loaded, destination already pushed to): the push waits for the next publish. */
const WAIT_CODES: readonly ErrorCode[] = ['not_found', 'unavailable', 'conflict', 'too_many_requests'];
/** Attempts to start a kept push again at a destination that does not take it, before it is forgotten. */
const DESTINATION_ATTEMPTS = 8;
const RETRY_MAX_MS = 30_000;

const isCode = (error: unknown, code: string): boolean => error instanceof GatewayError && error.code === code;

/** The REST API's push commands (`/rest-api/push/*` but `find`): the plane's, or the keeper's, which also keeps them. */
export interface PushCommands {
  /** `startedBy`: who asked (`rest`, `rest:<API key id>`). */
  startup(request: StartupRequest, startedBy: string): Promise<PushInfo>;
  terminate(mediaSessionId: string): Promise<void>;
  setMuted(mediaSessionId: string, muted: boolean): Promise<void>;
  soundOn(mediaSessionId: string, sound: SoundRequest): Promise<void>;
  soundOff(mediaSessionId: string): Promise<void>;
}

/** The push commands of a gateway that keeps nothing. */
export function planeCommands(plane: MediaPlane): PushCommands {
  return {
    startup: (request) => plane.startup(request),
    terminate: (id) => plane.terminate(id),
    setMuted: (id, muted) => plane.setMuted(id, muted),
    soundOn: (id, sound) => plane.soundOn(id, sound),
    soundOff: (id) => plane.soundOff(id),
  };
}

/**
 * Pushes started over REST, kept in a store (`store/`) from their startup to their end on purpose,
 * so that a restart of the gateway (or, in a cluster, the loss of the node that ran them) forgets
 * none: when the stream publishes again, each of its kept pushes is started again, with its id and
 * its audio as last commanded. A push ends on purpose when it is terminated, when its stream ends on
 * purpose (WHIP DELETE, the SDK's unpublish) or when it fails (refused, restore attempts spent); a
 * kept push whose stream is not published within `windowMs` is forgotten. Pushes the SDK asked for
 * are not kept: the SDK asks for them again when it publishes again.
 */
export class PushKeeper implements PushCommands {
  readonly #kept = new Map<string, Kept>();
  /** Kept pushes being started again. */
  readonly #restoring = new Set<string>();
  /** Pushes started whose record is being written. */
  readonly #writing = new Set<string>();
  /** Kept pushes whose destination did not take them when started again: their attempts, and the wait for the next. */
  readonly #retrying = new Map<string, { attempt: number; timer?: NodeJS.Timeout }>();
  #stopEvents: () => void = () => {};
  #sweeper: NodeJS.Timeout | undefined;
  #rewriteAgain: NodeJS.Timeout | undefined;
  #closed = false;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: PushKeeper): void {
    trackSize('kept_pushes', owner, (self) => self.#kept.size);
    trackSize('kept_pushes_restoring', owner, (self) => self.#restoring.size);
    trackSize('kept_pushes_writing', owner, (self) => self.#writing.size);
    trackSize('kept_pushes_retrying', owner, (self) => self.#retrying.size);
  }

  constructor(
    private readonly plane: MediaPlane,
    private readonly store: PushStore,
    private readonly sealer: Sealer,
    private readonly options: KeptPushOptions,
    private readonly log: Logger,
  ) {
    PushKeeper.#trackSizes(this);
  }

  /** Reads the kept pushes and follows the plane's streams to start them again: before the API is served. */
  async open(): Promise<void> {
    const { plane, options, log } = this;
    await this.#read().catch((error: Error) =>
      log.warn(
        { reason: error.message },
        'the push store cannot be read now: kept pushes are read at the next publish',
      ),
    );
    if (this.#kept.size) log.info({ count: this.#kept.size }, 'kept pushes wait for their streams');
    this.#stopEvents = plane.events((event) => {
      if (this.#closed) return;
      if (event.type === 'publisher.published' || event.type === 'publisher.returned') void this.#restore(event.stream);
      // The store first: in a cluster, what this node runs may have been kept by another.
      else if (event.type === 'publisher.ended')
        void this.#fresh({ stream: event.stream }).then(() =>
          this.#forgetStream(event.stream, event.reason ?? 'the stream ended'),
        );
      else if (event.type === 'transponder.failed')
        void this.#failed(event.mediaSessionId, event.reason ?? 'no reason told');
    });
    const sweepMs = options.sweepMs ?? Math.min(60_000, Math.max(1000, options.windowMs / 4));
    this.#sweeper = setInterval(() => void this.#sweep(), sweepMs);
    this.#sweeper.unref();
  }

  /** Starts a push and keeps it; `startedBy` says who asked (`rest`, `rest:<API key id>`). */
  async startup(request: StartupRequest, startedBy: string): Promise<PushInfo> {
    const id = randomUUID();
    const info = await this.plane.startup(request, id);
    const { options, ...rest } = request;
    const { action, ...sound } = options ?? {};
    const definition: Definition = {
      request: rest,
      muted: action === 'mute',
      ...(action === 'sound_on' ? { sound: soundRequestSchema.parse(sound) } : {}),
    };
    const kept: Kept = {
      stored: { id, stream: request.streamName, startedBy, createdAt: new Date().toISOString() },
      definition,
    };
    this.#kept.set(id, kept);
    this.#writing.add(id);
    try {
      await this.#write(kept);
    } catch (error) {
      this.#kept.delete(id);
      this.log.error({ mediaSessionId: id, reason: (error as Error).message }, 'a push could not be kept: ending it');
      await this.plane.terminate(id).catch(() => {});
      throw unavailable(`the push could not be kept (${(error as Error).message}): try again`);
    } finally {
      this.#writing.delete(id);
    }
    return info;
  }

  /** Ends a push, kept or not; a kept push waiting for its stream is forgotten. */
  async terminate(mediaSessionId: string): Promise<void> {
    await this.#fresh({ id: mediaSessionId });
    const kept = this.#kept.has(mediaSessionId);
    // Forgotten first: should the gateway stop before the push ends, it does not come back.
    if (kept) await this.#forget(mediaSessionId, 'terminated');
    try {
      await this.plane.terminate(mediaSessionId);
    } catch (error) {
      if (!(kept && isCode(error, 'not_found'))) throw error;
    }
  }

  async setMuted(mediaSessionId: string, muted: boolean): Promise<void> {
    await this.#command(
      mediaSessionId,
      () => this.plane.setMuted(mediaSessionId, muted),
      (d) => (d.muted = muted),
    );
  }

  async soundOn(mediaSessionId: string, sound: SoundRequest): Promise<void> {
    await this.#command(
      mediaSessionId,
      () => this.plane.soundOn(mediaSessionId, sound),
      (d) => (d.sound = sound),
    );
  }

  async soundOff(mediaSessionId: string): Promise<void> {
    await this.#command(
      mediaSessionId,
      () => this.plane.soundOff(mediaSessionId),
      (d) => delete d.sound,
    );
  }

  /**
   * Writes again every push this node knows and that runs somewhere: the store lost them (a
   * cluster's Redis restarted empty). A push that no node runs is not written: it waits nowhere.
   * Nodes register again one heartbeat at a time, and a push running at a node not back yet is not
   * found live, so this is done once more `nodesBackMs` later, when every node alive is back.
   */
  async rewrite(): Promise<void> {
    const { nodesBackMs } = this.options;
    if (nodesBackMs !== undefined) {
      clearTimeout(this.#rewriteAgain);
      this.#rewriteAgain = setTimeout(() => void this.#rewriteLive(), nodesBackMs);
      this.#rewriteAgain.unref();
    }
    await this.#rewriteLive();
  }

  async #rewriteLive(): Promise<void> {
    if (this.#closed) return;
    const live = new Set(
      (await this.plane.find({}).catch(() => [])).filter((p) => p.state !== 'failed').map((p) => p.mediaSessionId),
    );
    const again = [...this.#kept.values()].filter((k) => live.has(k.stored.id));
    await Promise.all(
      again.map((k) =>
        this.#write(k).catch((error: Error) =>
          this.log.warn(
            { mediaSessionId: k.stored.id, reason: error.message },
            'a kept push could not be written again',
          ),
        ),
      ),
    );
    if (again.length) this.log.info({ count: again.length }, 'kept pushes written again');
  }

  /** Stops following the plane and closes the store; pushes kept stay kept (the gateway is stopping, not they). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopEvents();
    clearInterval(this.#sweeper);
    clearTimeout(this.#rewriteAgain);
    for (const retry of this.#retrying.values()) clearTimeout(retry.timer);
    this.#retrying.clear();
    await this.store.close();
  }

  /** An audio command: applied to the live push (404 when there is none), then kept with it. */
  async #command(
    mediaSessionId: string,
    apply: () => Promise<void>,
    change: (definition: Definition) => void,
  ): Promise<void> {
    await apply();
    if (!this.#kept.has(mediaSessionId)) await this.#fresh({ id: mediaSessionId });
    const kept = this.#kept.get(mediaSessionId);
    if (!kept) return;
    change(kept.definition);
    await this.#write(kept);
  }

  #write(kept: Kept): Promise<void> {
    return this.store.put({ ...kept.stored, sealed: this.sealer.seal(kept.definition) });
  }

  async #forget(mediaSessionId: string, why: string): Promise<void> {
    const kept = this.#kept.get(mediaSessionId);
    if (!kept) return;
    this.#kept.delete(mediaSessionId);
    clearTimeout(this.#retrying.get(mediaSessionId)?.timer);
    this.#retrying.delete(mediaSessionId);
    this.log.info({ mediaSessionId, stream: kept.stored.stream, why }, 'kept push forgotten');
    await this.store
      .remove(mediaSessionId)
      .catch((error: Error) =>
        this.log.error({ mediaSessionId, reason: error.message }, 'a push could not be removed from the store'),
      );
  }

  #forgetStream(stream: string, reason: string): void {
    for (const [id, kept] of this.#kept)
      if (kept.stored.stream === stream) void this.#forget(id, `its stream ended (${reason})`);
  }

  /**
   * Reads the store, all of it or the part `of` names: it is the truth (in a cluster other nodes
   * keep and forget pushes too). Pushes new to this node wait for their stream; those gone from the
   * store are forgotten here too.
   */
  async #read(of: { stream: string } | { id: string } | 'all' = 'all'): Promise<void> {
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
  async #fresh(of: { stream: string } | { id: string }): Promise<void> {
    await this.#read(of).catch((error: Error) =>
      this.log.warn({ reason: error.message }, 'the push store cannot be read now'),
    );
  }

  /** The stream publishes: each of its kept pushes without a live push is started again. */
  async #restore(stream: string): Promise<void> {
    try {
      await this.#read({ stream });
    } catch (error) {
      return this.log.warn(
        { stream, reason: (error as Error).message },
        'the push store cannot be read now: kept pushes wait for the next publish',
      );
    }
    const waiting = [...this.#kept.values()].filter(
      (k) => k.stored.stream === stream && !this.#restoring.has(k.stored.id),
    );
    if (!waiting.length) return;
    const live = new Set(
      (await this.plane.find({ streamName: stream }).catch(() => []))
        .filter((p) => p.state !== 'failed')
        .map((p) => p.mediaSessionId),
    );
    await Promise.all(waiting.filter((k) => !live.has(k.stored.id)).map((k) => this.#restoreOne(k)));
  }

  async #restoreOne(kept: Kept): Promise<void> {
    const { id } = kept.stored;
    const { request, muted, sound } = kept.definition;
    this.#restoring.add(id);
    try {
      const options = sound
        ? { action: 'sound_on' as const, ...sound }
        : muted
          ? { action: 'mute' as const }
          : undefined;
      await this.plane.startup({ ...request, ...(options ? { options } : {}) }, id);
      if (sound && muted) await this.plane.setMuted(id, true);
      kept.awaySince = undefined;
      this.#retrying.delete(id);
      this.log.info({ mediaSessionId: id, stream: kept.stored.stream }, 'kept push started again');
    } catch (error) {
      if (this.#closed || this.#kept.get(id) !== kept) return;
      // The destination did not take it now (it still holds the session of the node the stream left,
      // it is restarting): tried again after a wait, while the stream publishes here.
      if (error instanceof GatewayError && DESTINATION_CODES.includes(error.code))
        return void (await this.#retryLater(kept, error.message));
      // Not now (the stream went again, the gateway is loaded, the destination is already pushed
      // to): it waits for the next publish. Refused for good (the policy or the sound file changed): forgotten.
      if (error instanceof GatewayError && WAIT_CODES.includes(error.code)) {
        this.log.warn({ mediaSessionId: id, reason: error.message }, 'a kept push could not start again now: it waits');
      } else {
        await this.#forget(id, `it could not start again: ${(error as Error).message}`);
      }
    } finally {
      this.#restoring.delete(id);
    }
  }

  async #retryLater(kept: Kept, reason: string): Promise<void> {
    const { id, stream } = kept.stored;
    const attempt = (this.#retrying.get(id)?.attempt ?? 0) + 1;
    if (attempt > DESTINATION_ATTEMPTS)
      return this.#forget(id, `its destination did not take it in ${DESTINATION_ATTEMPTS} attempts: ${reason}`);
    const inMs = Math.min(RETRY_MAX_MS, (this.options.retryMs ?? 2000) * 2 ** (attempt - 1));
    this.log.warn(
      { mediaSessionId: id, stream, attempt, inMs, reason },
      'the destination did not take a kept push now: it is tried again',
    );
    const timer = setTimeout(() => {
      const retry = this.#retrying.get(id);
      if (retry) retry.timer = undefined;
      void this.#restore(stream);
    }, inMs);
    timer.unref();
    this.#retrying.set(id, { attempt, timer });
  }

  /**
   * A push failed: forgotten, unless it runs on under the same id elsewhere (in a cluster, where its
   * stream went: the instance left behind at the node it left is not the push).
   */
  async #failed(mediaSessionId: string, reason: string): Promise<void> {
    await this.#fresh({ id: mediaSessionId });
    const pushes = await this.plane.find({}).catch(() => []);
    if (pushes.some((p) => p.mediaSessionId === mediaSessionId && p.state !== 'failed')) {
      return this.log.info({ mediaSessionId, reason }, 'a push failed here runs on elsewhere under its id: still kept');
    }
    await this.#forget(mediaSessionId, `it failed: ${reason}`);
  }

  async #heldElsewhere(stream: string): Promise<boolean> {
    // Redis unreachable: held, as far as this node can tell (nothing is forgotten on a guess).
    return this.options.streamHeld ? this.options.streamHeld(stream).catch(() => true) : false;
  }

  /** Kept pushes without a live push wait `windowMs` for their stream, then are forgotten. */
  async #sweep(): Promise<void> {
    if (this.#closed || !this.#kept.size) return;
    const pushes = await this.plane.find({}).catch(() => undefined);
    if (!pushes) return; // the plane cannot tell now: nothing is decided
    const live = new Set(pushes.filter((p) => p.state !== 'failed').map((p) => p.mediaSessionId));
    const now = monotonicMs();
    for (const [id, kept] of this.#kept) {
      if (live.has(id) || this.#restoring.has(id) || (await this.#heldElsewhere(kept.stored.stream)))
        kept.awaySince = undefined;
      else if (kept.awaySince === undefined) kept.awaySince = now;
      else if (now - kept.awaySince >= this.options.windowMs)
        await this.#forget(id, `its stream was not published within ${Math.round(this.options.windowMs / 1000)} s`);
    }
  }
}
