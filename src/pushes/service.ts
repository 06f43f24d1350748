import { trackSize } from '../core/tracked.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { conflict, GatewayError, notFound, tooMany, unavailable } from '../core/errors.js';
import type { Publisher } from '../publishers/publisher.js';
import type { PublisherRegistry } from '../publishers/registry.js';
import { parseDestination, withFullUrl, type NamingRules } from '../links/destination.js';
import { checkForPlatform, destinationCodecs, platformOf, type Platform } from '../links/platforms.js';
import { planEncoding, type EncodingPlan, type VideoRequest } from '../pipeline/encoding.js';
import type { Overlay } from '../pipeline/overlays.js';
import type { FindFilter, SoundRequest, StartupRequest } from './requests.js';
import { resolveSoundFile, SoundPlayer } from '../audio/sound.js';
import { resolveImageFiles } from '../security/media-files.js';
import { Push } from './push.js';
import type { Health } from './health.js';
import { pushParts, type PushSettings } from './settings.js';
import { Slots } from '../core/slots.js';
import { isActive, type PushState } from './states.js';
import { TypedEmitter } from '../core/events.js';
import type { RecordingEvent } from '../links/record-link.js';
import { layerSource, type LayerSource } from './layers.js';
import { backupDestination, backupGone, staleBackups, withBackups } from './twin.js';

/**
 * The fields of a startup request that decide the encoding: as asked, with the shape of a vertical
 * platform named when the request gives none.
 */
function videoRequest(
  request: StartupRequest,
  overlays: readonly Overlay[],
  platform: { platform: Platform; named: boolean } | undefined,
): VideoRequest {
  const {
    width,
    height,
    fps,
    keyFrameInterval,
    videoBitrate,
    audioBitrate,
    crop,
    fit,
    layer,
    layerPolicy,
    videoCodec,
  } = request;
  const shaped = platform?.named && request.aspect === undefined && !width ? platform.platform.aspect : undefined;
  const aspect = request.aspect ?? shaped;
  return {
    width,
    height,
    fps,
    keyFrameInterval,
    videoBitrate,
    audioBitrate,
    aspect,
    crop,
    fit,
    layer,
    layerPolicy,
    videoCodec,
    ...(overlays.length ? { overlays } : {}),
  };
}

/** How long a push that failed while live stays in find, with its lastError. */
const FAILED_KEPT_MS = 5 * 60_000;

/**
 * Creates, finds and ends pushes. Every check that can fail runs before anything is
 * spawned; a push that fails to start is removed before the error is returned.
 */
export type ServiceEvents = {
  /** A push changed state (every push of the service). */
  state: [Push, PushState];
  /** A push left the service's list: ended, or expired after failing. */
  removed: [Push];
  /** A part of a recording began or was finished. */
  recording: [RecordingEvent];
  /** A push's ingest health changed status. */
  health: [Push, Health];
};

export class PushService extends TypedEmitter<ServiceEvents> {
  readonly #byId = new Map<string, Push>();
  readonly #slots: Slots;
  /** Pushes removed from the list whose ffmpeg and link are still being ended. */
  readonly #stopping = new Set<Promise<void>>();
  /** Failed pushes stay listed (with lastError) this long, then go; each timer is cleared on removal. */
  readonly #expiry = new Map<Push, NodeJS.Timeout>();
  /** Why a push was ended by the gateway (its publisher gone, terminated, shutting down). */
  readonly #endedBy = new WeakMap<Push, GatewayError>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: PushService): void {
    trackSize('pushes', owner, (self) => self.#byId.size);
    trackSize('pushes_stopping', owner, (self) => self.#stopping.size);
    trackSize('pushes_failed_expiring', owner, (self) => self.#expiry.size);
  }

  constructor(
    private readonly publishers: PublisherRegistry,
    private readonly naming: NamingRules,
    private readonly settings: PushSettings,
    private readonly log: Logger,
    /** Republish every stream that starts publishing to this URL (Web Call Server's auto-start). */
    autoStartUrl?: string,
  ) {
    super((event, error) => log.error({ err: error, event }, 'push service listener failed'));
    PushService.#trackSizes(this);
    this.#slots = settings.slots ?? Slots.own();
    publishers.on('closed', (publisher, reason, lost) => void this.#endFor(publisher, reason, lost));
    // Before auto-start, so that a push waiting for the stream takes it back first.
    publishers.on('publishing', (publisher) => void this.#resumeFor(publisher));
    if (autoStartUrl) publishers.on('publishing', (publisher) => void this.#autoStart(publisher, autoStartUrl));
  }

  async #autoStart(publisher: Publisher, rtmpUrl: string): Promise<void> {
    try {
      const push = await this.startup({ streamName: publisher.name, rtmpUrl });
      this.log.info({ stream: publisher.name, mediaSessionId: push.mediaSessionId }, 'auto-started');
    } catch (error) {
      this.log.warn({ stream: publisher.name, reason: (error as Error).message }, 'auto-start failed');
    }
  }

  /**
   * Starts a push; `id` names it (a kept push started again keeps its id), else a new one is made.
   * With `backupUrl`, its twin to the backup ingest is started once it runs, on its timeline: a
   * backup that cannot start is told in the primary's `backupError`, and the primary goes on.
   */
  async startup(request: StartupRequest, id: string = randomUUID()): Promise<Push> {
    const { backupUrl, ...single } = request;
    if (backupUrl === undefined) return this.#startOne(single, id);
    const backupRequest = { ...single, rtmpUrl: backupUrl };
    const ingest = backupDestination({ ...request, backupUrl }, this.naming);
    // A backup to this ingest whose primary failed or went (the one this startup replaces) goes first.
    const stale = staleBackups(this.all(), request.streamName, ingest, (id) => this.#byId.get(id));
    await Promise.all(stale.map((p) => this.#remove(p)));
    const primary = await this.#startOne(single, id);
    try {
      const backup = await this.#startOne(backupRequest, randomUUID(), primary);
      if (this.#byId.get(primary.mediaSessionId) !== primary) {
        // The primary was terminated while its backup started: the backup goes too.
        await this.#remove(backup, conflict('its primary was terminated'));
        throw conflict(`push ${primary.mediaSessionId} was terminated while it started`);
      }
      primary.twin = { role: 'primary', mediaSessionId: backup.mediaSessionId };
    } catch (error) {
      if (this.#byId.get(primary.mediaSessionId) !== primary) throw error;
      const reason = (error as Error).message;
      primary.twin = { role: 'primary', error: reason };
      primary.log.warn({ reason }, 'its backup could not be started: the primary goes on alone');
    }
    return primary;
  }

  /** Starts one push; the twin of `primary` when given, on its timeline. */
  async #startOne(request: Omit<StartupRequest, 'backupUrl'>, id: string, primary?: Push): Promise<Push> {
    const holder = this.#byId.get(id);
    if (holder?.isActive) throw conflict(`push ${id} exists`);
    const destination = parseDestination(
      request.rtmpUrl,
      request.streamName,
      withFullUrl(this.naming, request.rtmpTransponderFullUrl),
      'rtmpUrl',
    );
    // What the destination's platform refuses is refused before anything else is asked.
    const platform = platformOf(request.platform, destination);
    if (platform) checkForPlatform(platform.platform, destination, request);
    const options = request.options ?? {};
    const publishing = (): Publisher => {
      const found = this.publishers.get(request.streamName);
      if (!found || found.isClosed) throw notFound(`stream ${request.streamName} is not publishing`);
      return found;
    };
    // What needs no lookup first, then the stream: a push of a stream that is not publishing asks no DNS.
    if (destination.protocol !== 'record') this.settings.resolveDestination.check(destination.host, destination.port);
    publishing();
    const overlays: Overlay[] = await resolveImageFiles(
      this.settings.mediaDir,
      (request.overlays ?? []).map((overlay, i) => ({ ...overlay, field: `overlays.${i}.file` })),
    );
    const video = videoRequest(request, overlays, platform);
    // One lookup, checked against the destination policy; the first connection goes to this address.
    const address =
      destination.protocol === 'record'
        ? undefined
        : await this.settings.resolveDestination(destination.host, destination.port);
    const stream = publishing(); // the same one, unless it ended during the lookup
    // A simulcast layer asked for: its own publisher, waited for until it has a keyframe when a height picks it.
    const source = await layerSource(stream, video, this.settings.startTimeoutMs).catch((error: unknown) => {
      throw unavailable(`the stream's simulcast layer cannot be taken now (${(error as Error).message})`);
    });
    const { publisher } = source;
    const { limits } = this.settings;
    const atLimit = (): GatewayError =>
      unavailable(`the gateway is at its limit of ${limits.total} pushes (limit_transponders)`);
    if (this.#slots.taken >= limits.total) throw atLimit();
    const ofStream = this.all().filter((t) => t.isActive && t.publisher.name === request.streamName).length;
    if (ofStream >= limits.perStream)
      throw tooMany(`stream ${request.streamName} has ${ofStream} pushes, its limit (limit_transponders_per_stream)`);
    this.settings.admit?.(`a push of ${request.streamName}`);
    const sameDestination = (t: Push): boolean =>
      t.publisher.name === request.streamName &&
      (t.destination.requestedUrl === request.rtmpUrl || t.destination.url === destination.url);
    /** Refuses a second push of the stream to this destination while one is active. */
    const checkNoActive = (): void => {
      const active = this.all().find((t) => sameDestination(t) && t.isActive);
      if (active)
        throw conflict(
          `a push of ${request.streamName} to ${destination.redactedRequestedUrl} exists: ${active.mediaSessionId}`,
        );
    };
    checkNoActive();
    // One that failed is replaced by the new one rather than blocking it.
    await Promise.all(
      this.all()
        .filter((t) => sameDestination(t) || t === holder)
        .map((t) => this.#remove(t)),
    );
    // A backup is sent what its primary is: the same frames.
    const codecs = primary?.request.codecs ?? destinationCodecs(platform?.platform, destination);
    const plan = planEncoding(publisher.videoCodec ?? 'H264', source.video, this.settings.encoding, codecs);
    // The sound file is checked and its decoding started before anything else is.
    const sound = options.soundFile
      ? await this.#startSound({ ...options, soundFile: options.soundFile }, 'options.soundFile')
      : undefined;

    if (!this.#slots.take(limits.total)) {
      await sound?.stop();
      throw atLimit();
    }
    // Until the push holds them, the slot and the sound's ffmpeg are given back on any refusal.
    let push: Push;
    try {
      // Started meanwhile (the lookups and the sound took turns): the same id, or the same destination.
      if (this.#byId.has(id)) throw conflict(`push ${id} exists`);
      checkNoActive();
      if (publishing() !== stream) throw notFound(`stream ${request.streamName} is not publishing`);
      // A backup whose primary was terminated meanwhile never starts.
      if (primary && this.#byId.get(primary.mediaSessionId) !== primary)
        throw conflict(`push ${primary.mediaSessionId} was terminated while its backup started`);
      const log = this.log.child({ stream: publisher.name, mediaSessionId: id, destination: destination.redactedUrl });
      const onRecording = (event: RecordingEvent): void => {
        const { file, durationMs, captionsFile, captionsError } = event.part;
        log.info({ file, durationMs, captionsFile }, `recording part ${event.type}`);
        if (captionsError)
          log.warn({ file, reason: captionsError }, "the part's captions could not be written beside it");
        this.safeEmit('recording', event);
      };
      const parts = pushParts(destination, this.settings, log, {
        stream: publisher.name,
        mediaSessionId: id,
        flashVer: request.rtmpFlashVersion,
        pinnedAddress: address,
        onRecording,
      });
      push = new Push(
        publisher,
        destination,
        plan,
        {
          id,
          options,
          video,
          platform: platform?.platform.name,
          codecs,
          ...(primary ? { origin: primary.writer.timeline.origin } : {}),
          spatial: source.spatial,
          captions: request.captions === true || request.captions === undefined ? 'roll-up' : request.captions,
        },
        this.settings,
        parts,
        log,
      );
    } catch (error) {
      this.#slots.give();
      await sound?.stop();
      throw error;
    }
    this.#byId.set(push.mediaSessionId, push);
    if (primary) push.twin = { role: 'backup', mediaSessionId: primary.mediaSessionId };
    let holdsSlot = true;
    const giveSlot = (): void => {
      if (holdsSlot) this.#slots.give();
      holdsSlot = false;
    };
    push.on('health', (health) => this.safeEmit('health', push, health));
    push.on('state', (state) => {
      if (!isActive(state)) giveSlot();
      if (state === 'failed' && this.#byId.get(push.mediaSessionId) === push) this.#keepFailed(push);
      this.safeEmit('state', push, state);
    });
    // However it ended (terminate, the publisher gone for good), it leaves the list.
    push.on('closed', () => {
      giveSlot();
      this.#forget(push);
    });
    if (options.action === 'mute') push.audio.setMuted(true);
    if (sound) push.audio.play(sound);
    push.start();
    await push.ready;
    if (push.state !== 'running') {
      // Ended while it started (its publisher gone, terminated, the gateway closing): that says why.
      const ended = this.#endedBy.get(push);
      const reason = ended?.message ?? push.lastError ?? `push is ${push.state}`;
      const code = ended?.code ?? push.errorCode ?? 'internal';
      await this.#remove(push);
      throw new GatewayError(code, `push failed to start: ${reason}`, undefined, ended?.retryAfterS);
    }
    return push;
  }

  find(filter: FindFilter): Push[] {
    return [...this.#byId.values()].filter(
      (t) =>
        (filter.streamName === undefined || t.publisher.name === filter.streamName) &&
        (filter.rtmpUrl === undefined || t.destination.requestedUrl === filter.rtmpUrl),
    );
  }

  all(): Push[] {
    return [...this.#byId.values()];
  }

  get(mediaSessionId: string): Push {
    const t = this.#byId.get(mediaSessionId);
    if (!t) throw notFound(`no push ${mediaSessionId}`);
    return t;
  }

  /** Ends a push; a primary's backup with it (a backup alone ends alone). */
  async terminate(mediaSessionId: string): Promise<void> {
    const pair = this.#withBackup(this.get(mediaSessionId));
    await Promise.all(pair.map((push) => this.#remove(push, conflict('it was terminated'))));
  }

  /** Silences (or restores) the publisher's audio in one push's output (and its backup's: the same encode). */
  setMuted(mediaSessionId: string, muted: boolean): void {
    for (const push of this.#withBackup(this.get(mediaSessionId))) push.audio.setMuted(muted);
  }

  /** Plays a WAV file of the media directory into one push's output (and its backup's), over the live audio. */
  async soundOn(mediaSessionId: string, request: SoundRequest): Promise<void> {
    const pushes = this.#withBackup(this.#active(mediaSessionId)).filter((push) => push.isActive);
    const started = await Promise.allSettled(pushes.map(() => this.#startSound(request, 'soundFile')));
    const players = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = started.find((result) => result.status === 'rejected');
    const [primary] = pushes;
    if (failed || this.#byId.get(primary!.mediaSessionId) !== primary || !primary!.isActive) {
      await Promise.all(players.map((player) => player.stop()));
      if (failed) throw failed.reason;
      throw conflict(`push ${mediaSessionId} ended meanwhile`);
    }
    // A backup that ended meanwhile is left out.
    pushes.forEach((push, i) => {
      if (push.isActive) push.audio.play(players[i]!);
      else void players[i]!.stop();
    });
  }

  async soundOff(mediaSessionId: string): Promise<void> {
    await Promise.all(this.#withBackup(this.get(mediaSessionId)).map((push) => push.audio.stop()));
  }

  /** The push, and the backups listed as its twins (one, or one still starting). */
  #withBackup(push: Push): Push[] {
    return withBackups(push, this.all());
  }

  #active(mediaSessionId: string): Push {
    const push = this.get(mediaSessionId);
    if (!push.isActive) throw conflict(`push ${mediaSessionId} is ${push.state}`);
    return push;
  }

  async #startSound(request: SoundRequest, field: string): Promise<SoundPlayer> {
    const path = await resolveSoundFile(this.settings.mediaDir, request.soundFile, field);
    const onListenerError = (event: string, error: unknown): void =>
      this.log.error({ err: error, event }, 'sound player listener failed');
    return SoundPlayer.start(
      this.settings.ffmpegPath,
      path,
      { ffmpeg: this.settings.ffmpeg, loop: request.loop ?? false, volume: request.volume ?? 1, onListenerError },
      field,
    );
  }

  /** Ends every push, and waits for those already ending (terminated, their publisher gone). */
  async closeAll(): Promise<void> {
    await Promise.all([
      ...this.all().map((t) => this.#remove(t, unavailable('the gateway is shutting down'))),
      ...this.#stopping,
    ]);
  }

  /** A push that failed while live stays in find for FAILED_KEPT_MS, telling why, then goes. */
  #keepFailed(push: Push): void {
    this.log.info(
      { mediaSessionId: push.mediaSessionId, keptMs: FAILED_KEPT_MS },
      'push failed: listed until it expires',
    );
    this.#expiry.set(
      push,
      setTimeout(() => void this.#remove(push), FAILED_KEPT_MS),
    );
  }

  /** Ends a push; `why`, when given, is what its startup answers if it had not yet started. */
  async #remove(push: Push, why?: GatewayError): Promise<void> {
    if (why && !this.#endedBy.has(push)) this.#endedBy.set(push, why);
    this.#forget(push);
    const stopping = push.stop();
    this.#stopping.add(stopping);
    await stopping.finally(() => this.#stopping.delete(stopping));
  }

  #forget(push: Push): void {
    clearTimeout(this.#expiry.get(push));
    this.#expiry.delete(push);
    if (this.#byId.get(push.mediaSessionId) !== push) return;
    this.#byId.delete(push.mediaSessionId);
    backupGone(push, (id) => this.#byId.get(id));
    this.safeEmit('removed', push);
  }

  /**
   * A publisher ended. Its pushes end with it when it ended on purpose (WHIP DELETE, the SDK's
   * unpublish) or when there is no grace period; when it was lost (connection gone, page closed)
   * they hold the output with a still picture until the stream is published again or their grace
   * period ends (each push keeps its own deadline, and ends itself at it).
   */
  async #endFor(publisher: Publisher, reason: string, lost: boolean): Promise<void> {
    const mine = this.all().filter((t) => t.publisher.origin === publisher);
    const graceMs = this.settings.publisherGraceMs;
    const holding = lost && graceMs > 0 ? mine.filter((t) => t.publisherLost(reason, graceMs)) : [];
    const ending = mine.filter((t) => !holding.includes(t));
    if (ending.length)
      this.log.info({ stream: publisher.name, count: ending.length, reason }, 'publisher ended: ending its pushes');
    if (holding.length)
      this.log.info(
        { stream: publisher.name, count: holding.length, reason, graceMs },
        'publisher lost: pushes wait for it',
      );
    // A push still starting ends with its publisher: one lost may come back (retry then), one that
    // ended on purpose is gone.
    const why = lost
      ? unavailable(`the stream's publisher was lost (${reason})`)
      : new GatewayError('not_found', `the stream ended (${reason})`);
    await Promise.all(ending.map((t) => this.#remove(t, why)));
  }

  /** The pushes of `streamName` waiting for its publisher (in standby, or restoring their output meanwhile). */
  awaiting(streamName: string): Push[] {
    return this.all().filter((t) => t.awaitingPublisher && t.publisher.name === streamName);
  }

  /** The stream is published again: the pushes waiting for it go live with the new publisher. */
  async #resumeFor(publisher: Publisher): Promise<void> {
    const waiting = this.awaiting(publisher.name);
    if (!waiting.length) return;
    this.log.info({ stream: publisher.name, count: waiting.length }, 'publisher back: its pushes go live again');
    await Promise.all(
      waiting.map(async (t) => {
        let plan: EncodingPlan;
        let source: LayerSource;
        try {
          source = await layerSource(publisher, t.request.video, this.settings.startTimeoutMs);
          plan = planEncoding(
            source.publisher.videoCodec ?? 'H264',
            source.video,
            this.settings.encoding,
            t.request.codecs,
          );
        } catch (error) {
          this.log.warn(
            { mediaSessionId: t.mediaSessionId, reason: (error as Error).message },
            'the returning publisher cannot be sent: ending the push',
          );
          return this.#remove(t);
        }
        t.resume(source.publisher, plan, source.spatial);
      }),
    );
  }
}
