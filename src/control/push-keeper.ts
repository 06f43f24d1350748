import { trackSize } from '../core/tracked.js';
import { monotonicMs } from '../core/clock.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { GatewayError, unavailable } from '../core/errors.js';
import type { Sealer } from '../security/seal.js';
import type { PushStore } from '../store/push-log.js';
import type { PushInfo } from '../pushes/info.js';
import type { SoundRequest, StartupRequest } from '../pushes/requests.js';
import type { MediaPlane } from '../plane/plane.js';
import type { PushCommands } from './commands.js';
import { definitionOf, PushMirror, startupOf, type Definition, type Kept } from './push-mirror.js';
import { restartDecision } from './restart.js';

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

const isCode = (error: unknown, code: string): boolean => error instanceof GatewayError && error.code === code;

/**
 * Pushes started over REST, kept in a store (`store/`, mirrored here by `PushMirror`) from their
 * startup to their end on purpose, so that a restart of the gateway (or, in a cluster, the loss of
 * the node that ran them) forgets none: when the stream publishes again, each of its kept pushes is
 * started again, with its id and its audio as last commanded (what a failed start again leads to is
 * `restartDecision`'s). A push ends on purpose when it is terminated, when its stream ends on
 * purpose (WHIP DELETE, the SDK's unpublish) or when it fails (refused, restore attempts spent); a
 * kept push whose stream is not published within `windowMs` is forgotten. Pushes the SDK asked for
 * are not kept: the SDK asks for them again when it publishes again. It follows the plane's events
 * from above: the plane tells, the keeper decides, and calls the plane as any caller does.
 */
export class PushKeeper implements PushCommands {
  readonly #mirror: PushMirror;
  /** Kept pushes being started again. */
  readonly #restoring = new Set<string>();
  /** Kept pushes whose destination did not take them when started again: their attempts, and the wait for the next. */
  readonly #retrying = new Map<string, { attempt: number; timer?: NodeJS.Timeout }>();
  #stopEvents: () => void = () => {};
  #sweeper: NodeJS.Timeout | undefined;
  #rewriteAgain: NodeJS.Timeout | undefined;
  #closed = false;

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: PushKeeper): void {
    trackSize('kept_pushes_restoring', owner, (self) => self.#restoring.size);
    trackSize('kept_pushes_retrying', owner, (self) => self.#retrying.size);
  }

  constructor(
    private readonly plane: MediaPlane,
    store: PushStore,
    sealer: Sealer,
    private readonly options: KeptPushOptions,
    private readonly log: Logger,
  ) {
    this.#mirror = new PushMirror(store, sealer, log);
    PushKeeper.#trackSizes(this);
  }

  /** Reads the kept pushes and follows the plane's streams to start them again: before the API is served. */
  async open(): Promise<void> {
    const { plane, options, log } = this;
    const mirror = this.#mirror;
    await mirror
      .read()
      .catch((error: Error) =>
        log.warn(
          { reason: error.message },
          'the push store cannot be read now: kept pushes are read at the next publish',
        ),
      );
    if (mirror.size) log.info({ count: mirror.size }, 'kept pushes wait for their streams');
    this.#stopEvents = plane.events((event) => {
      if (this.#closed) return;
      if (event.type === 'publisher.published' || event.type === 'publisher.returned') void this.#restore(event.stream);
      // The store first: in a cluster, what this node runs may have been kept by another.
      else if (event.type === 'publisher.ended')
        void mirror
          .fresh({ stream: event.stream })
          .then(() => this.#forgetStream(event.stream, event.reason ?? 'the stream ended'));
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
    try {
      await this.#mirror.add({
        stored: { id, stream: request.streamName, startedBy, createdAt: new Date().toISOString() },
        definition: definitionOf(request),
      });
    } catch (error) {
      this.log.error({ mediaSessionId: id, reason: (error as Error).message }, 'a push could not be kept: ending it');
      await this.plane.terminate(id).catch(() => {});
      throw unavailable(`the push could not be kept (${(error as Error).message}): try again`);
    }
    return info;
  }

  /** Ends a push, kept or not; a kept push waiting for its stream is forgotten. */
  async terminate(mediaSessionId: string): Promise<void> {
    await this.#mirror.fresh({ id: mediaSessionId });
    const kept = this.#mirror.has(mediaSessionId);
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
    const again = [...this.#mirror.values()].filter((k) => live.has(k.stored.id));
    await Promise.all(
      again.map((k) =>
        this.#mirror
          .write(k)
          .catch((error: Error) =>
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
    await this.#mirror.close();
  }

  /** An audio command: applied to the live push (404 when there is none), then kept with it. */
  async #command(
    mediaSessionId: string,
    apply: () => Promise<void>,
    change: (definition: Definition) => void,
  ): Promise<void> {
    await apply();
    if (!this.#mirror.has(mediaSessionId)) await this.#mirror.fresh({ id: mediaSessionId });
    const kept = this.#mirror.get(mediaSessionId);
    if (!kept) return;
    change(kept.definition);
    await this.#mirror.write(kept);
  }

  /** Forgets a kept push, and its next attempt if one waits. */
  async #forget(mediaSessionId: string, why: string): Promise<void> {
    if (!this.#mirror.has(mediaSessionId)) return;
    clearTimeout(this.#retrying.get(mediaSessionId)?.timer);
    this.#retrying.delete(mediaSessionId);
    await this.#mirror.forget(mediaSessionId, why);
  }

  #forgetStream(stream: string, reason: string): void {
    for (const [id, kept] of this.#mirror.entries())
      if (kept.stored.stream === stream) void this.#forget(id, `its stream ended (${reason})`);
  }

  /** The stream publishes: each of its kept pushes without a live push is started again. */
  async #restore(stream: string): Promise<void> {
    try {
      await this.#mirror.read({ stream });
    } catch (error) {
      return this.log.warn(
        { stream, reason: (error as Error).message },
        'the push store cannot be read now: kept pushes wait for the next publish',
      );
    }
    const waiting = [...this.#mirror.values()].filter(
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
    const { id, stream } = kept.stored;
    const { muted, sound } = kept.definition;
    this.#restoring.add(id);
    try {
      await this.plane.startup(startupOf(kept.definition), id);
      if (sound && muted) await this.plane.setMuted(id, true);
      kept.awaySince = undefined;
      this.#retrying.delete(id);
      this.log.info({ mediaSessionId: id, stream }, 'kept push started again');
    } catch (error) {
      if (this.#closed || this.#mirror.get(id) !== kept) return;
      const decision = restartDecision(error, (this.#retrying.get(id)?.attempt ?? 0) + 1, this.options.retryMs);
      switch (decision.action) {
        case 'retry':
          return this.#retryLater(kept, decision.attempt, decision.inMs, decision.reason);
        case 'wait':
          return void this.log.warn(
            { mediaSessionId: id, reason: decision.reason },
            'a kept push could not start again now: it waits',
          );
        case 'forget':
          return this.#forget(id, decision.why);
      }
    } finally {
      this.#restoring.delete(id);
    }
  }

  /** Tries a kept push again in `inMs`, while its stream publishes here. */
  #retryLater(kept: Kept, attempt: number, inMs: number, reason: string): void {
    const { id, stream } = kept.stored;
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
    await this.#mirror.fresh({ id: mediaSessionId });
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
    if (this.#closed || !this.#mirror.size) return;
    const pushes = await this.plane.find({}).catch(() => undefined);
    if (!pushes) return; // the plane cannot tell now: nothing is decided
    const live = new Set(pushes.filter((p) => p.state !== 'failed').map((p) => p.mediaSessionId));
    const now = monotonicMs();
    for (const [id, kept] of this.#mirror.entries()) {
      if (live.has(id) || this.#restoring.has(id) || (await this.#heldElsewhere(kept.stored.stream)))
        kept.awaySince = undefined;
      else if (kept.awaySince === undefined) kept.awaySince = now;
      else if (now - kept.awaySince >= this.options.windowMs)
        await this.#forget(id, `its stream was not published within ${Math.round(this.options.windowMs / 1000)} s`);
    }
  }
}
