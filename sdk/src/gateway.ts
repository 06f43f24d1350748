/**
 * Browser SDK for the gateway: publish the camera over WebRTC and have the gateway republish it to
 * RTMP destinations, each with its own status; the connection comes back by itself after a drop.
 *
 *   const session = createSession({ urlServer: 'wss://gateway.example.com' });
 *   session.on(SESSION_STATUS.ESTABLISHED, () => {
 *     session.createStream({ name: 'test', display: el, destinations: [{ id: 'yt', rtmpUrl: 'rtmp://host/live/key', rtmpTransponderFullUrl: true }] })
 *       .on(STREAM_STATUS.DESTINATION, (e) => console.log(e.destination.id, e.destination.state, e.destination.reason))
 *       .publish();
 *   });
 */

import { SIGNALING_PATH, type ClientMessage, type DestinationMessage, type ServerMessage } from '../../src/signaling/protocol.js';
import { DEFAULT_RECONNECT, mayReconnect, reconnectDelay } from './backoff.js';
import { keepResolution, preferH264, sendStats, showPreview } from './media.js';

export const SESSION_STATUS = { ESTABLISHED: 'ESTABLISHED', RECONNECTING: 'RECONNECTING', DISCONNECTED: 'DISCONNECTED', FAILED: 'FAILED' } as const;
/** `PUBLISHING`: the gateway receives the stream (whether a destination took it is told by `DESTINATION`). */
export const STREAM_STATUS = { PUBLISHING: 'PUBLISHING', RECONNECTING: 'RECONNECTING', UNPUBLISHED: 'UNPUBLISHED', FAILED: 'FAILED', DESTINATION: 'DESTINATION' } as const;
/**
 * A destination's state: `starting` (connecting to the RTMP server), `live` (the server accepted the
 * stream and the media goes out), `reconnecting` (the output or the connection to the gateway broke
 * and is being restored), `standby` (the publisher is away; the gateway holds the broadcast with the
 * last picture), `failed` (given up: `reason` says why), `stopped` (ended).
 */
export const DESTINATION_STATE = { STARTING: 'starting', LIVE: 'live', RECONNECTING: 'reconnecting', STANDBY: 'standby', FAILED: 'failed', STOPPED: 'stopped' } as const;

export type SessionStatus = (typeof SESSION_STATUS)[keyof typeof SESSION_STATUS] | 'NEW';
export type StreamStatus = Exclude<(typeof STREAM_STATUS)[keyof typeof STREAM_STATUS], 'DESTINATION'> | 'NEW' | 'PENDING';
export type DestinationState = (typeof DESTINATION_STATE)[keyof typeof DESTINATION_STATE];

/** How the SDK comes back after a drop: waits of `initialDelayMs`, growing ×`factor` up to `maxDelayMs` (+0-25 %). */
export interface ReconnectOptions {
  /** Default 500 ms. */
  initialDelayMs?: number;
  /** Default 10 000 ms. */
  maxDelayMs?: number;
  /** Default 2. */
  factor?: number;
  /** Attempts before giving up; default 0: never. */
  maxAttempts?: number;
}

export interface SessionOptions {
  /** The gateway's address: `ws://host:8080`, `wss://host`, or an http(s) URL of the same server. */
  urlServer: string;
  /**
   * A publish token from your backend (a publish key or a JWT it signed), sent with each publish
   * over the WebSocket, never in a URL. Needed when the gateway requires publish authorization.
   */
  token?: string;
  /**
   * When the WebSocket or a peer connection drops, reconnect and publish the same streams again, so
   * the gateway's pushes (waiting in standby) go on in the same RTMP sessions. On by default;
   * `false` turns it off.
   */
  reconnect?: boolean | ReconnectOptions;
}

/** An RTMP destination of a stream. */
export interface DestinationOptions {
  /** Names the destination in its events; by default `d1`, `d2`, ... (letters, digits, `_ . : -`). */
  id?: string;
  rtmpUrl: string;
  /** Take the RTMP stream name from the URL's last path segment (the stream key) instead of prefix + name. */
  rtmpTransponderFullUrl?: boolean;
}

export interface StreamOptions {
  name: string;
  /** An element to show the local preview in (a <video> is created inside it), or a <video> itself. */
  display?: HTMLElement;
  /** getUserMedia constraints; by default 1280x720 video and audio. */
  constraints?: MediaStreamConstraints;
  /** Where the gateway republishes the stream once it is publishing. */
  destinations?: DestinationOptions[];
  /** One destination (the same as `destinations: [{ id: 'rtmpUrl', rtmpUrl, rtmpTransponderFullUrl }]`). */
  rtmpUrl?: string;
  rtmpTransponderFullUrl?: boolean;
  /** Publish this stream instead of asking for the camera. */
  mediaStream?: MediaStream;
  /** A publish token for this stream, instead of the session's. */
  token?: string;
}

/** A destination as last told by the gateway. */
export interface DestinationStatus {
  id: string;
  state: DestinationState;
  /** The destination with its stream key, password and query values masked. */
  url?: string;
  /** Why it reconnects, waits or failed. */
  reason?: string;
  /** Why it failed to start: `destination_refused`, `destination_unreachable`, `forbidden`, ... */
  code?: string;
  /** The option at fault when the gateway refused it (`destination.rtmpUrl`, `destinations.1.rtmpUrl`). */
  field?: string;
  /** The gateway's transponder, as the REST API's find shows it. */
  mediaSessionId?: string;
}

/** What a publish sends, measured over the last interval. */
export interface SendStats {
  bitrateKbps: number;
  frameRate: number;
  width: number;
  height: number;
}

export type SessionEvent =
  | { status: 'ESTABLISHED'; info?: string }
  | { status: 'RECONNECTING'; info: string; attempt: number; delayMs: number }
  | { status: 'DISCONNECTED'; info: string }
  | { status: 'FAILED'; info: string };

export type StreamEvent =
  | { status: 'PUBLISHING' }
  | { status: 'RECONNECTING'; info: string; attempt: number; delayMs: number }
  | { status: 'UNPUBLISHED'; info: string }
  | { status: 'FAILED'; info: string; field?: string }
  | { status: 'DESTINATION'; destination: DestinationStatus };

/** Details passed to status handlers (any of the events above). */
export type StatusEvent = SessionEvent | StreamEvent;

class Emitter<E extends { status: string }> {
  readonly #handlers = new Map<string, ((event: any) => void)[]>();
  on<S extends E['status']>(status: S, handler: (event: Extract<E, { status: S }>) => void): this {
    this.#handlers.set(status, [...(this.#handlers.get(status) ?? []), handler]);
    return this;
  }
  protected emit(event: E): void {
    for (const handler of this.#handlers.get(event.status) ?? []) {
      try {
        handler(event);
      } catch (error) {
        console.error('gateway SDK: a status handler threw', error);
      }
    }
  }
}

export function createSession(options: SessionOptions): Session {
  return new Session(options);
}

function signalingUrl(urlServer: string): string {
  const url = new URL(urlServer);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('urlServer must be a ws://, wss://, http:// or https:// URL');
  url.pathname = url.pathname.replace(/\/+$/, '') + SIGNALING_PATH;
  return url.toString();
}

export class Session extends Emitter<SessionEvent> {
  #status: SessionStatus = 'NEW';
  #socket: WebSocket | undefined;
  readonly #url: string;
  readonly #policy: typeof DEFAULT_RECONNECT | undefined;
  readonly #streams = new Set<Stream>();
  /** Requests waiting for their answer: a publish, or adding a destination. */
  readonly #requests = new Map<string, { stream: Stream; destination?: string }>();
  #requestCount = 0;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closing = false;

  /** @internal */
  readonly _token: string | undefined;
  /** @internal */
  readonly _policy: typeof DEFAULT_RECONNECT | undefined;

  constructor(options: SessionOptions) {
    super();
    this._token = options.token;
    this.#url = signalingUrl(options.urlServer);
    this.#policy = this._policy = options.reconnect === false ? undefined : { ...DEFAULT_RECONNECT, ...(options.reconnect === true ? {} : options.reconnect) };
    this.#connect();
  }

  status(): SessionStatus {
    return this.#status;
  }

  createStream(options: StreamOptions): Stream {
    return new Stream(this, options);
  }

  /** Ends every stream of the session and the connection; nothing is reconnected. */
  disconnect(): void {
    this.#closing = true;
    clearTimeout(this.#retry);
    for (const stream of this.#streams) stream._closed('session disconnected');
    this.#socket?.close(1000, 'disconnected by the client');
    if (this.#status !== 'DISCONNECTED') this.#setStatus({ status: 'DISCONNECTED', info: 'disconnected by the client' });
  }

  #connect(): void {
    let socket: WebSocket;
    try {
      socket = this.#socket = new WebSocket(this.#url);
    } catch (error) {
      // Refused by the browser itself (a blocked port, mixed content): told once handlers are set.
      setTimeout(() => this.#lost(error instanceof Error ? error.message : String(error)), 0);
      return;
    }
    socket.onmessage = (event) => this.#onMessage(JSON.parse(String(event.data)) as ServerMessage);
    socket.onclose = (event) => {
      if (socket === this.#socket) this.#lost(event.reason || (this.#status === 'NEW' ? 'cannot reach the gateway' : 'connection to the gateway lost'));
    };
  }

  /** The connection dropped or could not be made: reconnect after a wait, or give up. */
  #lost(info: string): void {
    if (this.#closing) return;
    this.#requests.clear();
    if (this.#policy && this.#status !== 'NEW' && mayReconnect(this.#policy, this.#attempt + 1)) {
      const delayMs = reconnectDelay(this.#policy, ++this.#attempt, Math.random());
      for (const stream of this.#streams) stream._connectionLost(info, this.#attempt, delayMs);
      this.#setStatus({ status: 'RECONNECTING', info, attempt: this.#attempt, delayMs });
      this.#retry = setTimeout(() => this.#connect(), delayMs);
      return;
    }
    for (const stream of this.#streams) stream._closed(info);
    this.#setStatus(this.#status === 'NEW' ? { status: 'FAILED', info } : { status: 'DISCONNECTED', info });
  }

  /** @internal */
  _connected(): boolean {
    return this.#status === 'ESTABLISHED' && this.#socket?.readyState === WebSocket.OPEN;
  }

  /** @internal Sends a message; a request's answer (or error) goes to `stream`. */
  _send(message: ClientMessage, stream?: Stream, destination?: string): string {
    const requestId = String(++this.#requestCount);
    if (stream) this.#requests.set(requestId, { stream, destination });
    this.#socket?.send(JSON.stringify('requestId' in message ? { ...message, requestId } : message));
    return requestId;
  }

  /** @internal */
  _track(stream: Stream, tracked: boolean): void {
    if (tracked) this.#streams.add(stream);
    else this.#streams.delete(stream);
  }

  #setStatus(event: SessionEvent): void {
    this.#status = event.status;
    this.emit(event);
  }

  #onMessage(message: ServerMessage): void {
    if (message.type === 'hello') {
      const reconnected = this.#status === 'RECONNECTING';
      this.#attempt = 0;
      this.#setStatus({ status: 'ESTABLISHED', ...(reconnected ? { info: 'reconnected' } : {}) });
      if (reconnected) for (const stream of this.#streams) stream._republish();
      return;
    }
    if ('requestId' in message && message.requestId !== undefined) {
      const request = this.#requests.get(message.requestId);
      if (!request) return;
      this.#requests.delete(message.requestId);
      request.stream._onReply(message, request.destination);
      return;
    }
    if ('name' in message) for (const stream of this.#streams) if (stream.name() === message.name) stream._onMessage(message);
  }
}

export class Stream extends Emitter<StreamEvent> {
  #status: StreamStatus = 'NEW';
  #pc: RTCPeerConnection | undefined;
  #media: MediaStream | undefined;
  #ownsMedia = false;
  readonly #destinations = new Map<string, { options: DestinationOptions & { id: string }; status: DestinationStatus }>();
  #destinationCount = 0;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #lastStats: RTCStatsReport | undefined;

  constructor(
    private readonly session: Session,
    private readonly options: StreamOptions,
  ) {
    super();
    const listed = options.destinations ?? (options.rtmpUrl !== undefined ? [{ id: 'rtmpUrl', rtmpUrl: options.rtmpUrl, rtmpTransponderFullUrl: options.rtmpTransponderFullUrl }] : []);
    for (const destination of listed) this.#remember(destination);
  }

  name(): string {
    return this.options.name;
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
    if (this.#status === 'PUBLISHING' && this.session._connected()) {
      this.session._send({ type: 'addDestination', requestId: '', name: this.options.name, destination: options }, this, options.id);
    }
    return options.id;
  }

  /** Ends the push to one destination; the stream and its other destinations go on. */
  removeDestination(id: string): void {
    const entry = this.#destinations.get(id);
    if (!entry) throw new Error(`no destination ${id}`);
    this.#destinations.delete(id);
    if (this.#status === 'PUBLISHING' && this.session._connected()) this.session._send({ type: 'removeDestination', name: this.options.name, id });
    this.emit({ status: 'DESTINATION', destination: { ...entry.status, state: 'stopped', reason: undefined } });
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
    if (this.#status !== 'NEW') throw new Error(`stream ${this.options.name} was already published`);
    this.#status = 'PENDING';
    this.session._track(this, true);
    this.#start().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error)));
    return this;
  }

  stop(): void {
    if (this.#status !== 'NEW' && this.#status !== 'UNPUBLISHED' && this.#status !== 'FAILED' && this.session._connected()) {
      this.session._send({ type: 'unpublish', name: this.options.name });
    }
    this._closed('stopped by the client');
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
        this.options.mediaStream ??
        (await navigator.mediaDevices.getUserMedia(this.options.constraints ?? { audio: true, video: { width: 1280, height: 720 } }));
      this.#ownsMedia = !this.options.mediaStream;
      if (this.options.display) showPreview(this.options.display, this.#media);
    }
    const media = this.#media;
    this.#pc?.close();
    const pc = (this.#pc = new RTCPeerConnection({ iceServers: [] }));
    this.#lastStats = undefined;
    for (const track of media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video') preferH264(transceiver);
    }
    pc.onconnectionstatechange = () => {
      if (pc === this.#pc && pc.connectionState === 'failed') this.#retryOrFail('WebRTC connection failed');
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await keepResolution(pc);
    if (!offer.sdp) throw new Error('the browser made no SDP offer');
    if (pc !== this.#pc || !this.session._connected()) return; // dropped meanwhile: published again once back
    const token = this.options.token ?? this.session._token;
    this.session._send(
      {
        type: 'publish',
        requestId: '',
        name: this.options.name,
        sdp: offer.sdp,
        destinations: [...this.#destinations.values()].map((d) => d.options),
        ...(token !== undefined ? { token } : {}),
      },
      this,
    );
  }

  /** @internal The connection to the gateway (or the peer connection) dropped: publish again after `delayMs`. */
  _connectionLost(info: string, attempt: number, delayMs: number): void {
    if (this.#status !== 'PENDING' && this.#status !== 'PUBLISHING' && this.#status !== 'RECONNECTING') return;
    this.#pc?.close();
    this.#pc = undefined;
    this.#attempt = attempt;
    this.#status = 'RECONNECTING';
    this.emit({ status: 'RECONNECTING', info, attempt, delayMs });
    for (const entry of this.#destinations.values()) {
      if (entry.status.state !== 'failed' && entry.status.state !== 'stopped') this.#setDestination(entry.options.id, { state: 'reconnecting', reason: info });
    }
    // A lost WebSocket is retried by the session, which publishes again once back; a failed peer
    // connection (the WebSocket still up) is published again here.
    clearTimeout(this.#retry);
    if (this.session._connected()) this.#retry = setTimeout(() => this._republish(), delayMs);
  }

  /** Publishes again after a wait, while the reconnect policy allows another attempt. */
  #retryOrFail(info: string): void {
    const policy = this.session._policy;
    const attempt = this.#attempt + 1;
    if (policy && mayReconnect(policy, attempt)) this._connectionLost(info, attempt, reconnectDelay(policy, attempt, Math.random()));
    else this.#fail(info);
  }

  /** @internal */
  _republish(): void {
    if (this.#status !== 'RECONNECTING') return;
    this.#start().catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error)));
  }

  /** @internal The answer to this stream's publish or to adding one of its destinations. */
  _onReply(message: ServerMessage, destination?: string): void {
    if (message.type === 'error' && destination !== undefined) {
      this.#setDestination(destination, { state: 'failed', reason: message.message, code: message.code, field: message.field });
    } else if (message.type === 'error' && message.code === 'conflict' && this.#status === 'RECONNECTING') {
      // The gateway has not yet noticed that the connection before the drop is gone.
      this.#retryOrFail(message.message);
    } else if (message.type === 'error') {
      this.#fail(message.message || 'the gateway refused the stream', message.field);
    } else if (message.type === 'answer' && this.#pc) {
      this.#pc.setRemoteDescription({ type: 'answer', sdp: message.sdp }).catch((error: unknown) => this.#fail(String(error)));
    }
  }

  /** @internal */
  _onMessage(message: ServerMessage): void {
    if (message.type === 'status' && message.status === 'PUBLISHING') {
      this.#attempt = 0;
      this.#status = 'PUBLISHING';
      this.emit({ status: 'PUBLISHING' });
    } else if (message.type === 'status' && message.status === 'UNPUBLISHED') {
      this._closed(message.info ?? 'unpublished');
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
    for (const key of Object.keys(status) as (keyof DestinationStatus)[]) if (status[key] === undefined) delete status[key];
    entry.status = status;
    this.emit({ status: 'DESTINATION', destination: { ...status } });
  }

  #fail(info: string, field?: string): void {
    if (this.#status === 'FAILED' || this.#status === 'UNPUBLISHED') return;
    this.#release();
    this.#status = 'FAILED';
    this.emit({ status: 'FAILED', info, ...(field ? { field } : {}) });
  }

  /** @internal */
  _closed(info: string): void {
    if (this.#status === 'FAILED' || this.#status === 'UNPUBLISHED') return;
    const wasActive = this.#status !== 'NEW';
    this.#release();
    this.#status = 'UNPUBLISHED';
    if (wasActive) this.emit({ status: 'UNPUBLISHED', info });
  }

  #release(): void {
    clearTimeout(this.#retry);
    this.session._track(this, false);
    this.#pc?.close();
    this.#pc = undefined;
    if (this.#ownsMedia) for (const track of this.#media?.getTracks() ?? []) track.stop();
  }
}
