import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { conflict, GatewayError, notFound, tooMany, unavailable } from '../errors.js';
import type { Publisher } from '../publishers/publisher.js';
import type { PublisherRegistry } from '../publishers/registry.js';
import { parseDestination, withFullUrl, type NamingRules } from './destination.js';
import { planEncoding, type EncodingPlan, type VideoRequest } from './encoding.js';
import type { FindFilter, SoundRequest, StartupRequest } from './requests.js';
import { resolveSoundFile, SoundPlayer } from '../audio/sound.js';
import { Transponder } from './transponder.js';
import { transponderParts, type TransponderSettings } from './settings.js';
import { Slots } from '../slots.js';
import { isActive, type TransponderState } from './states.js';
import { TypedEmitter } from '../events.js';
import type { RecordingEvent } from './record-link.js';

/** The fields of a startup request that decide the encoding. */
function videoRequest(request: VideoRequest): VideoRequest {
  const { width, height, fps, keyFrameInterval, videoBitrate, audioBitrate } = request;
  return { width, height, fps, keyFrameInterval, videoBitrate, audioBitrate };
}

/** How long a transponder that failed while live stays in find, with its lastError. */
const FAILED_KEPT_MS = 5 * 60_000;

/**
 * Creates, finds and ends transponders. Every check that can fail runs before anything is
 * spawned; a transponder that fails to start is removed before the error is returned.
 */
export type ServiceEvents = {
  /** A transponder changed state (every transponder of the service). */
  state: [Transponder, TransponderState];
  /** A transponder left the service's list: ended, or expired after failing. */
  removed: [Transponder];
  /** A part of a recording began or was finished. */
  recording: [RecordingEvent];
};

export class TransponderService extends TypedEmitter<ServiceEvents> {
  readonly #byId = new Map<string, Transponder>();
  readonly #slots: Slots;
  /** Transponders removed from the list whose ffmpeg and link are still being ended. */
  readonly #stopping = new Set<Promise<void>>();
  /** Failed transponders stay listed (with lastError) this long, then go; each timer is cleared on removal. */
  readonly #expiry = new Map<Transponder, NodeJS.Timeout>();
  /** Why a transponder was ended by the gateway (its publisher gone, terminated, shutting down). */
  readonly #endedBy = new WeakMap<Transponder, GatewayError>();

  constructor(
    private readonly publishers: PublisherRegistry,
    private readonly naming: NamingRules,
    private readonly settings: TransponderSettings,
    private readonly log: Logger,
    /** Republish every stream that starts publishing to this URL (Web Call Server's auto-start). */
    autoStartUrl?: string,
  ) {
    super((event, error) => log.error({ err: error, event }, 'transponder service listener failed'));
    this.#slots = settings.slots ?? Slots.own();
    publishers.on('closed', (publisher, reason, lost) => void this.#endFor(publisher, reason, lost));
    // Before auto-start, so that a transponder waiting for the stream takes it back first.
    publishers.on('publishing', (publisher) => void this.#resumeFor(publisher));
    if (autoStartUrl) publishers.on('publishing', (publisher) => void this.#autoStart(publisher, autoStartUrl));
  }

  async #autoStart(publisher: Publisher, rtmpUrl: string): Promise<void> {
    try {
      const transponder = await this.startup({ streamName: publisher.name, rtmpUrl });
      this.log.info({ stream: publisher.name, mediaSessionId: transponder.mediaSessionId }, 'auto-started');
    } catch (error) {
      this.log.warn({ stream: publisher.name, reason: (error as Error).message }, 'auto-start failed');
    }
  }

  /** Starts a push; `id` names it (a kept push started again keeps its id), else a new one is made. */
  async startup(request: StartupRequest, id: string = randomUUID()): Promise<Transponder> {
    const holder = this.#byId.get(id);
    if (holder?.isActive) throw conflict(`transponder ${id} exists`);
    const destination = parseDestination(request.rtmpUrl, request.streamName, withFullUrl(this.naming, request.rtmpTransponderFullUrl), 'rtmpUrl');
    const options = request.options ?? {};
    const publishing = (): Publisher => {
      const found = this.publishers.get(request.streamName);
      if (!found || found.isClosed) throw notFound(`stream ${request.streamName} is not publishing`);
      return found;
    };
    // What needs no lookup first, then the stream: a push of a stream that is not publishing asks no DNS.
    if (destination.protocol !== 'record') this.settings.resolveDestination.check(destination.host, destination.port);
    publishing();
    // One lookup, checked against the destination policy; the first connection goes to this address.
    const address = destination.protocol === 'record' ? undefined : await this.settings.resolveDestination(destination.host, destination.port);
    const publisher = publishing(); // the same one, unless it ended during the lookup
    const { limits } = this.settings;
    const atLimit = (): GatewayError => unavailable(`the gateway is at its limit of ${limits.total} transponders (limit_transponders)`);
    if (this.#slots.taken >= limits.total) throw atLimit();
    const ofStream = this.all().filter((t) => t.isActive && t.publisher.name === request.streamName).length;
    if (ofStream >= limits.perStream) throw tooMany(`stream ${request.streamName} has ${ofStream} transponders, its limit (limit_transponders_per_stream)`);
    this.settings.admit?.(`a push of ${request.streamName}`);
    const sameDestination = (t: Transponder): boolean =>
      t.publisher.name === request.streamName && (t.destination.requestedUrl === request.rtmpUrl || t.destination.url === destination.url);
    /** Refuses a second push of the stream to this destination while one is active. */
    const checkNoActive = (): void => {
      const active = this.all().find((t) => sameDestination(t) && t.isActive);
      if (active) throw conflict(`a transponder of ${request.streamName} to ${destination.redactedRequestedUrl} exists: ${active.mediaSessionId}`);
    };
    checkNoActive();
    // One that failed is replaced by the new one rather than blocking it.
    await Promise.all(this.all().filter((t) => sameDestination(t) || t === holder).map((t) => this.#remove(t)));
    const plan = planEncoding(publisher.videoCodec ?? 'H264', request, this.settings.encoding);
    // The sound file is checked and its decoding started before anything else is.
    const sound = options.soundFile ? await this.#startSound({ ...options, soundFile: options.soundFile }, 'options.soundFile') : undefined;

    if (!this.#slots.take(limits.total)) {
      await sound?.stop();
      throw atLimit();
    }
    // Until the transponder holds them, the slot and the sound's ffmpeg are given back on any refusal.
    let transponder: Transponder;
    try {
      // Started meanwhile (the lookups and the sound took turns): the same id, or the same destination.
      if (this.#byId.has(id)) throw conflict(`transponder ${id} exists`);
      checkNoActive();
      if (publishing() !== publisher) throw notFound(`stream ${request.streamName} is not publishing`);
      const log = this.log.child({ stream: publisher.name, mediaSessionId: id, destination: destination.redactedUrl });
      const onRecording = (event: RecordingEvent): void => {
        log.info({ file: event.part.file, durationMs: event.part.durationMs }, `recording part ${event.type}`);
        this.safeEmit('recording', event);
      };
      const parts = transponderParts(destination, this.settings, log, { stream: publisher.name, mediaSessionId: id, flashVer: request.rtmpFlashVersion, pinnedAddress: address, onRecording });
      transponder = new Transponder(publisher, destination, plan, { id, options, video: videoRequest(request) }, this.settings, parts, log);
    } catch (error) {
      this.#slots.give();
      await sound?.stop();
      throw error;
    }
    this.#byId.set(transponder.mediaSessionId, transponder);
    let holdsSlot = true;
    const giveSlot = (): void => {
      if (holdsSlot) this.#slots.give();
      holdsSlot = false;
    };
    transponder.on('state', (state) => {
      if (!isActive(state)) giveSlot();
      if (state === 'failed' && this.#byId.get(transponder.mediaSessionId) === transponder) this.#keepFailed(transponder);
      this.safeEmit('state', transponder, state);
    });
    // However it ended (terminate, the publisher gone for good), it leaves the list.
    transponder.on('closed', () => {
      giveSlot();
      this.#forget(transponder);
    });
    if (options.action === 'mute') transponder.audio.setMuted(true);
    if (sound) transponder.audio.play(sound);
    transponder.start();
    await transponder.ready;
    if (transponder.state !== 'running') {
      // Ended while it started (its publisher gone, terminated, the gateway closing): that says why.
      const ended = this.#endedBy.get(transponder);
      const reason = ended?.message ?? transponder.lastError ?? `transponder is ${transponder.state}`;
      const code = ended?.code ?? transponder.errorCode ?? 'internal';
      await this.#remove(transponder);
      throw new GatewayError(code, `transponder failed to start: ${reason}`, undefined, ended?.retryAfterS);
    }
    return transponder;
  }

  find(filter: FindFilter): Transponder[] {
    return [...this.#byId.values()].filter(
      (t) =>
        (filter.streamName === undefined || t.publisher.name === filter.streamName) &&
        (filter.rtmpUrl === undefined || t.destination.requestedUrl === filter.rtmpUrl),
    );
  }

  all(): Transponder[] {
    return [...this.#byId.values()];
  }

  get(mediaSessionId: string): Transponder {
    const t = this.#byId.get(mediaSessionId);
    if (!t) throw notFound(`no transponder ${mediaSessionId}`);
    return t;
  }

  async terminate(mediaSessionId: string): Promise<void> {
    await this.#remove(this.get(mediaSessionId), conflict('it was terminated'));
  }

  /** Silences (or restores) the publisher's audio in one transponder's output. */
  setMuted(mediaSessionId: string, muted: boolean): void {
    this.get(mediaSessionId).audio.setMuted(muted);
  }

  /** Plays a WAV file of the media directory into one transponder's output, over the live audio. */
  async soundOn(mediaSessionId: string, request: SoundRequest): Promise<void> {
    const transponder = this.#active(mediaSessionId);
    const player = await this.#startSound(request, 'soundFile');
    if (this.#byId.get(mediaSessionId) !== transponder || !transponder.isActive) {
      await player.stop();
      throw conflict(`transponder ${mediaSessionId} ended meanwhile`);
    }
    transponder.audio.play(player);
  }

  async soundOff(mediaSessionId: string): Promise<void> {
    await this.get(mediaSessionId).audio.stop();
  }

  #active(mediaSessionId: string): Transponder {
    const transponder = this.get(mediaSessionId);
    if (!transponder.isActive) throw conflict(`transponder ${mediaSessionId} is ${transponder.state}`);
    return transponder;
  }

  async #startSound(request: SoundRequest, field: string): Promise<SoundPlayer> {
    const path = await resolveSoundFile(this.settings.mediaDir, request.soundFile, field);
    const onListenerError = (event: string, error: unknown): void => this.log.error({ err: error, event }, 'sound player listener failed');
    return SoundPlayer.start(this.settings.ffmpegPath, path, { ffmpeg: this.settings.ffmpeg, loop: request.loop ?? false, volume: request.volume ?? 1, onListenerError }, field);
  }

  /** Ends every transponder, and waits for those already ending (terminated, their publisher gone). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.all().map((t) => this.#remove(t, unavailable('the gateway is shutting down'))), ...this.#stopping]);
  }

  /** A transponder that failed while live stays in find for FAILED_KEPT_MS, telling why, then goes. */
  #keepFailed(transponder: Transponder): void {
    this.log.info({ mediaSessionId: transponder.mediaSessionId, keptMs: FAILED_KEPT_MS }, 'transponder failed: listed until it expires');
    this.#expiry.set(transponder, setTimeout(() => void this.#remove(transponder), FAILED_KEPT_MS));
  }

  /** Ends a transponder; `why`, when given, is what its startup answers if it had not yet started. */
  async #remove(transponder: Transponder, why?: GatewayError): Promise<void> {
    if (why && !this.#endedBy.has(transponder)) this.#endedBy.set(transponder, why);
    this.#forget(transponder);
    const stopping = transponder.stop();
    this.#stopping.add(stopping);
    await stopping.finally(() => this.#stopping.delete(stopping));
  }

  #forget(transponder: Transponder): void {
    clearTimeout(this.#expiry.get(transponder));
    this.#expiry.delete(transponder);
    if (this.#byId.get(transponder.mediaSessionId) !== transponder) return;
    this.#byId.delete(transponder.mediaSessionId);
    this.safeEmit('removed', transponder);
  }

  /**
   * A publisher ended. Its transponders end with it when it ended on purpose (WHIP DELETE, the SDK's
   * unpublish) or when there is no grace period; when it was lost (connection gone, page closed)
   * they hold the output with a still picture until the stream is published again or their grace
   * period ends (each transponder keeps its own deadline, and ends itself at it).
   */
  async #endFor(publisher: Publisher, reason: string, lost: boolean): Promise<void> {
    const mine = this.all().filter((t) => t.publisher === publisher);
    const graceMs = this.settings.publisherGraceMs;
    const holding = lost && graceMs > 0 ? mine.filter((t) => t.publisherLost(reason, graceMs)) : [];
    const ending = mine.filter((t) => !holding.includes(t));
    if (ending.length) this.log.info({ stream: publisher.name, count: ending.length, reason }, 'publisher ended: ending its transponders');
    if (holding.length) this.log.info({ stream: publisher.name, count: holding.length, reason, graceMs }, 'publisher lost: transponders wait for it');
    // A push still starting ends with its publisher: one lost may come back (retry then), one that
    // ended on purpose is gone.
    const why = lost
      ? unavailable(`the stream's publisher was lost (${reason})`)
      : new GatewayError('not_found', `the stream ended (${reason})`);
    await Promise.all(ending.map((t) => this.#remove(t, why)));
  }

  /** The transponders of `streamName` waiting for its publisher (in standby, or restoring their output meanwhile). */
  awaiting(streamName: string): Transponder[] {
    return this.all().filter((t) => t.awaitingPublisher && t.publisher.name === streamName);
  }

  /** The stream is published again: the transponders waiting for it go live with the new publisher. */
  async #resumeFor(publisher: Publisher): Promise<void> {
    const waiting = this.awaiting(publisher.name);
    if (!waiting.length) return;
    this.log.info({ stream: publisher.name, count: waiting.length }, 'publisher back: its transponders go live again');
    await Promise.all(
      waiting.map(async (t) => {
        let plan: EncodingPlan;
        try {
          plan = planEncoding(publisher.videoCodec ?? 'H264', t.request.video, this.settings.encoding);
        } catch (error) {
          this.log.warn({ mediaSessionId: t.mediaSessionId, reason: (error as Error).message }, 'the returning publisher cannot be sent: ending the transponder');
          return this.#remove(t);
        }
        t.resume(publisher, plan);
      }),
    );
  }
}
