import type { DestinationMessage, ServerMessage } from '../../src/signaling/protocol.js';
import { mayReconnect, reconnectDelay } from './backoff.js';
import { keepResolution, preferAv1, preferH264, sendStats, showPreview, SIMULCAST_ENCODINGS } from './media.js';
import type { StreamHost, StreamLink } from './host.js';
import {
  Emitter,
  type DestinationOptions,
  type DestinationState,
  type DestinationStatus,
  type MixerInfo,
  type SendStats,
  type StreamEvent,
  type StreamOptions,
  type StreamStatus,
} from './types.js';

export class Stream extends Emitter<StreamEvent> {
  #status: StreamStatus = 'NEW';
  #pc: RTCPeerConnection | undefined;
  /** The publish's captions data channel, where the gateway takes one. */
  #captions: RTCDataChannel | undefined;
  #media: MediaStream | undefined;
  #ownsMedia = false;
  readonly #destinations = new Map<
    string,
    { options: DestinationOptions & { id: string }; status: DestinationStatus }
  >();
  #destinationCount = 0;
  /** The gateway has this publish (its publish message went on the current connection). */
  #offered = false;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #lastStats: RTCStatsReport | undefined;
  readonly #host: StreamHost;
  /** What its session sees of it. */
  readonly #link: StreamLink;
  readonly #options: StreamOptions;

  /** @internal Streams are made by `Session.createStream`. */
  constructor(host: StreamHost, options: StreamOptions) {
    super();
    this.#host = host;
    this.#options = options;
    this.#link = {
      name: options.name,
      connectionLost: (info, attempt, delayMs) => this.#connectionLost(info, attempt, delayMs),
      closed: (info) => this.#closed(info),
      republish: () => this.#republish(),
      reply: (message, destination) => this.#onReply(message, destination),
      message: (message) => this.#onMessage(message),
    };
    const listed =
      options.destinations ??
      (options.rtmpUrl !== undefined
        ? [{ id: 'rtmpUrl', rtmpUrl: options.rtmpUrl, rtmpTransponderFullUrl: options.rtmpTransponderFullUrl }]
        : []);
    for (const destination of listed) this.#remember(destination);
  }

  name(): string {
    return this.#options.name;
  }

  status(): StreamStatus {
    return this.#status;
  }

  /** Every destination with its last known state. */
  destinations(): DestinationStatus[] {
    return [...this.#destinations.values()].map((d) => ({ ...d.status }));
  }

  /** Adds a destination; pushed at once when the stream is publishing. Answers its id. */
  addDestination(destination: DestinationOptions): string {
    const { options } = this.#remember(destination);
    if (this.#offered && this.#host.connected()) {
      this.#host.send(
        { type: 'addDestination', requestId: '', name: this.#options.name, destination: options },
        this.#link,
        options.id,
      );
    }
    return options.id;
  }

  /** Ends the push to one destination; the stream and its other destinations go on. */
  removeDestination(id: string): void {
    const entry = this.#destinations.get(id);
    if (!entry) throw new Error(`no destination ${id}`);
    this.#destinations.delete(id);
    if (this.#offered && this.#host.connected())
      this.#host.send({ type: 'removeDestination', name: this.#options.name, id });
    this.emit({ status: 'DESTINATION', destination: { ...entry.status, state: 'stopped', reason: undefined } });
  }

  /**
   * Adds this stream to a mixer (`mixer://name`), in `slot` (0 first; after the others by default),
   * labelled `label`: its publish token must allow the mixer (its `mixers` grant). Answers the
   * mixer with its inputs; rejects with the gateway's error (`error.field` names what was wrong).
   */
  async joinMixer(uri: string, options: { slot?: number; label?: string } = {}): Promise<MixerInfo> {
    const answer = await this.#host.call({
      type: 'joinMixer',
      requestId: '',
      name: this.#options.name,
      uri,
      ...options,
    });
    return (answer as Extract<ServerMessage, { type: 'mixer' }>).mixer;
  }

  /** Takes this stream out of a mixer it joined. */
  async leaveMixer(uri: string): Promise<MixerInfo> {
    const answer = await this.#host.call({ type: 'leaveMixer', requestId: '', name: this.#options.name, uri });
    return (answer as Extract<ServerMessage, { type: 'mixer' }>).mixer;
  }

  /**
   * A caption in every push of this stream (CEA-608 in the H.264 each destination gets), on the
   * frames captured as the gateway receives it (or at `at`, the stream's media time in ms, as
   * `stream/find` gives it): printable text, at most four rows of 32 columns once wrapped; with
   * `final: false`, interim text that the next caption writes over (a speech recogniser's). Answers
   * how many pushes carry it; rejects with the gateway's error (`error.field` names what was wrong).
   */
  async sendCaption(text: string, options: { final?: boolean; at?: number } = {}): Promise<number> {
    const answer = await this.#host.call({
      type: 'caption',
      requestId: '',
      name: this.#options.name,
      text,
      ...options,
    });
    return (answer as Extract<ServerMessage, { type: 'captioned' }>).pushes;
  }

  /**
   * A caption sent on the publish's own data channel (`captions`), beside its media rather than over
   * the session's WebSocket: the same text and options as `sendCaption`, with no answer (a caption
   * the gateway refuses is counted in the stream's `messagesRefused`). False when the channel is not
   * open: not connected yet, or the gateway's engine takes none (werift).
   */
  sendCaptionOnDataChannel(text: string, options: { final?: boolean; at?: number } = {}): boolean {
    const channel = this.#captions;
    if (channel?.readyState !== 'open') return false;
    const plain = options.final === undefined && options.at === undefined && !text.startsWith('{');
    channel.send(plain ? text : JSON.stringify({ text, ...options }));
    return true;
  }

  /** WebRTC statistics of the publishing connection. */
  async getStats(): Promise<RTCStatsReport | undefined> {
    return this.#pc?.getStats();
  }

  /** Bitrate since the last call, frame rate and size of what is sent. */
  async getSendStats(): Promise<SendStats | undefined> {
    const report = await this.#pc?.getStats();
    if (!report) return undefined;
    const stats = sendStats(this.#lastStats, report);
    this.#lastStats = report;
    return stats;
  }

  /** The published media, once publish() has obtained it. */
  getMediaStream(): MediaStream | undefined {
    return this.#media;
  }

  /** Sends silence instead of the microphone (the track stays); `unmuteAudio()` brings it back. */
  muteAudio(): void {
    for (const track of this.#media?.getAudioTracks() ?? []) track.enabled = false;
  }

  unmuteAudio(): void {
    for (const track of this.#media?.getAudioTracks() ?? []) track.enabled = true;
  }

  isAudioMuted(): boolean {
    return (this.#media?.getAudioTracks() ?? []).some((track) => !track.enabled);
  }

  publish(): this {
    if (this.#status !== 'NEW') throw new Error(`stream ${this.#options.name} was already published`);
    this.#status = 'PENDING';
    this.#host.track(this.#link, true);
    this.#start().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error)));
    return this;
  }

  stop(): void {
    // Also after the publish failed or was lost: the gateway may be holding its pushes in standby,
    // waiting for it to come back, and a stop ends them.
    if (this.#status !== 'NEW' && this.#host.connected()) {
      this.#host.send({ type: 'unpublish', name: this.#options.name });
    }
    this.#closed('stopped by the client');
  }

  #remember(destination: DestinationOptions): { options: DestinationOptions & { id: string } } {
    const id = destination.id ?? `d${++this.#destinationCount}`;
    if (this.#destinations.has(id)) throw new Error(`destination ${id} is already given`);
    const entry = { options: { ...destination, id }, status: { id, state: 'starting' as DestinationState } };
    this.#destinations.set(id, entry);
    return entry;
  }

  async #start(): Promise<void> {
    if (!this.#media) {
      this.#media =
        this.#options.mediaStream ??
        (await navigator.mediaDevices.getUserMedia(
          this.#options.constraints ?? { audio: true, video: { width: 1280, height: 720 } },
        ));
      this.#ownsMedia = !this.#options.mediaStream;
      if (this.#options.display) showPreview(this.#options.display, this.#media);
    }
    const media = this.#media;
    this.#pc?.close();
    const pc = (this.#pc = new RTCPeerConnection({ iceServers: [] }));
    this.#lastStats = undefined;
    const simulcast =
      this.#options.simulcast ?? this.#options.destinations?.some((d) => d.layer !== undefined) ?? false;
    // Negotiated (the id agreed beforehand): the gateway's engine does not take in-band channel opening.
    const channel = { negotiated: true, id: 0, ordered: true };
    this.#captions = this.#host.captionsChannel() ? pc.createDataChannel('captions', channel) : undefined;
    for (const track of media.getTracks()) {
      const layers = simulcast && track.kind === 'video' ? { sendEncodings: SIMULCAST_ENCODINGS } : {};
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [media], ...layers });
      if (track.kind !== 'video') continue;
      // AV1 where the browser encodes it and the gateway takes it; H.264 otherwise.
      const av1 =
        this.#options.preferCodec === 'av1' && this.#host.videoCodecs().includes('AV1') && preferAv1(transceiver);
      if (!av1) preferH264(transceiver);
    }
    pc.onconnectionstatechange = () => {
      if (pc === this.#pc && pc.connectionState === 'failed') this.#retryOrFail('WebRTC connection failed');
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await keepResolution(pc);
    if (!offer.sdp) throw new Error('the browser made no SDP offer');
    if (pc !== this.#pc || !this.#host.connected()) return; // dropped meanwhile: published again once back
    const token = this.#options.token ?? this.#host.token;
    this.#offered = true;
    this.#host.send(
      {
        type: 'publish',
        requestId: '',
        name: this.#options.name,
        sdp: offer.sdp,
        destinations: [...this.#destinations.values()].map((d) => d.options),
        ...(token !== undefined ? { token } : {}),
      },
      this.#link,
    );
  }

  /** The connection to the gateway (or the peer connection) dropped: publish again after `delayMs`. */
  #connectionLost(info: string, attempt: number, delayMs: number): void {
    if (this.#status !== 'PENDING' && this.#status !== 'PUBLISHING' && this.#status !== 'RECONNECTING') return;
    this.#pc?.close();
    this.#pc = undefined;
    this.#offered = false;
    this.#attempt = attempt;
    this.#status = 'RECONNECTING';
    this.emit({ status: 'RECONNECTING', info, attempt, delayMs });
    for (const entry of this.#destinations.values()) {
      if (entry.status.state !== 'failed' && entry.status.state !== 'stopped')
        this.#setDestination(entry.options.id, { state: 'reconnecting', reason: info });
    }
    // A lost WebSocket is retried by the session, which publishes again once back; a failed peer
    // connection (the WebSocket still up) is published again here.
    clearTimeout(this.#retry);
    if (this.#host.connected()) this.#retry = setTimeout(() => this.#republish(), delayMs);
  }

  /** Publishes again after a wait (none for a first attempt `now`), while the reconnect policy allows another attempt. */
  #retryOrFail(info: string, now = false): void {
    const policy = this.#host.policy;
    const attempt = this.#attempt + 1;
    if (policy && mayReconnect(policy, attempt))
      this.#connectionLost(info, attempt, now && attempt === 1 ? 0 : reconnectDelay(policy, attempt, Math.random()));
    else this.#fail(info);
  }

  #republish(): void {
    if (this.#status !== 'RECONNECTING') return;
    this.#start().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error)));
  }

  /** The answer to this stream's publish or to adding one of its destinations. */
  #onReply(message: ServerMessage, destination?: string): void {
    if (message.type === 'error' && destination !== undefined) {
      this.#setDestination(destination, {
        state: 'failed',
        reason: message.message,
        code: message.code,
        field: message.field,
      });
    } else if (
      message.type === 'error' &&
      (message.code === 'conflict' || message.code === 'unavailable') &&
      this.#status === 'RECONNECTING'
    ) {
      // The gateway has not yet noticed that the connection before the drop is gone, or cannot
      // take the stream now (in a cluster: the node that held it is gone, its claim not yet ended).
      this.#retryOrFail(message.message);
    } else if (message.type === 'error') {
      this.#fail(message.message || 'the gateway refused the stream', message.field);
    } else if (message.type === 'answer' && this.#pc) {
      this.#pc
        .setRemoteDescription({ type: 'answer', sdp: message.sdp })
        .catch((error: unknown) => this.#fail(String(error)));
    }
  }

  #onMessage(message: ServerMessage): void {
    if (message.type === 'status' && message.status === 'PUBLISHING') {
      this.#attempt = 0;
      this.#status = 'PUBLISHING';
      this.emit({ status: 'PUBLISHING' });
    } else if (message.type === 'status' && message.status === 'UNPUBLISHED' && message.lost && this.#host.policy) {
      // The gateway stopped receiving (no media: a network outage), or its node is draining: publish
      // again at once, then after growing waits; its pushes wait.
      this.#retryOrFail(message.info ?? 'the gateway lost the stream', true);
    } else if (message.type === 'status' && message.status === 'UNPUBLISHED') {
      this.#closed(message.info ?? 'unpublished');
    } else if (message.type === 'destination') {
      this.#onDestination(message);
    }
  }

  #onDestination(message: DestinationMessage): void {
    if (!this.#destinations.has(message.id)) return; // removed by the client
    this.#setDestination(message.id, {
      state: message.state,
      url: message.url,
      mediaSessionId: message.mediaSessionId,
      reason: message.reason,
      code: message.code,
      field: undefined,
    });
  }

  #setDestination(id: string, change: Partial<DestinationStatus>): void {
    const entry = this.#destinations.get(id);
    if (!entry) return;
    const status: DestinationStatus = { ...entry.status, ...change };
    for (const key of Object.keys(status) as (keyof DestinationStatus)[])
      if (status[key] === undefined) delete status[key];
    entry.status = status;
    this.emit({ status: 'DESTINATION', destination: { ...status } });
  }

  #fail(info: string, field?: string): void {
    if (this.#status === 'FAILED' || this.#status === 'UNPUBLISHED') return;
    this.#release();
    this.#status = 'FAILED';
    this.emit({ status: 'FAILED', info, ...(field ? { field } : {}) });
  }

  #closed(info: string): void {
    if (this.#status === 'FAILED' || this.#status === 'UNPUBLISHED') return;
    const wasActive = this.#status !== 'NEW';
    this.#release();
    this.#status = 'UNPUBLISHED';
    if (wasActive) this.emit({ status: 'UNPUBLISHED', info });
  }

  #release(): void {
    clearTimeout(this.#retry);
    this.#host.track(this.#link, false);
    this.#pc?.close();
    this.#pc = undefined;
    if (this.#ownsMedia) for (const track of this.#media?.getTracks() ?? []) track.stop();
  }
}
