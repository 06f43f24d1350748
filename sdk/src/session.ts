import {
  IDLE_CLOSE_CODE,
  MOVE_CLOSE_CODE,
  SIGNALING_PATH,
  type ClientMessage,
  type ServerMessage,
  type StartMixerMessage,
} from '../../src/signaling/protocol.js';
import { DEFAULT_RECONNECT, mayReconnect, reconnectDelay, type ReconnectPolicy } from './backoff.js';
import type { StreamHost, StreamLink } from './host.js';
import { Stream } from './stream.js';
import {
  Emitter,
  type CheckOptions,
  type CheckReport,
  type MixerInfo,
  type MixerOptions,
  type SessionEvent,
  type SessionOptions,
  type SessionStatus,
  type StreamOptions,
} from './types.js';

function signalingUrl(urlServer: string): string {
  const url = new URL(urlServer);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    throw new Error('urlServer must be a ws://, wss://, http:// or https:// URL');
  url.pathname = url.pathname.replace(/\/+$/, '') + SIGNALING_PATH;
  return url.toString();
}

export class Session extends Emitter<SessionEvent> {
  #status: SessionStatus = 'NEW';
  #socket: WebSocket | undefined;
  readonly #url: string;
  readonly #streams = new Set<StreamLink>();
  /** Requests waiting for their answer: a publish, or adding a destination. */
  readonly #requests = new Map<string, { stream: StreamLink; destination?: string }>();
  #requestCount = 0;
  /** Calls waiting for their answer (a destination check, a mixer's): the answer, or the error the gateway sent. */
  readonly #calls = new Map<string, { resolve: (answer: ServerMessage) => void; reject: (error: Error) => void }>();
  #attempt = 0;
  readonly #token: string | undefined;
  /** While connecting again after an idle close (nothing was lost): the messages waiting for it. */
  #quiet: string[] | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closing = false;

  readonly #policy: ReconnectPolicy | undefined;
  /** What its streams see of the session. */
  readonly #host: StreamHost;
  /** Whether the gateway takes a publish's captions data channel. */
  #captionsChannel = false;
  #videoCodecs: readonly string[] = ['H264'];

  constructor(options: SessionOptions) {
    super();
    this.#url = signalingUrl(options.urlServer);
    this.#token = options.token;
    const policy = (this.#policy =
      options.reconnect === false
        ? undefined
        : { ...DEFAULT_RECONNECT, ...(options.reconnect === true ? {} : options.reconnect) });
    this.#host = {
      token: options.token,
      policy,
      connected: () => this.#connected(),
      captionsChannel: () => this.#captionsChannel,
      videoCodecs: () => this.#videoCodecs,
      send: (message, replyTo, destination) => this.#send(message, replyTo, destination),
      call: (message) => this.#call(message),
      track: (link, tracked) => (tracked ? this.#streams.add(link) : this.#streams.delete(link)),
    };
    this.#connect();
  }

  status(): SessionStatus {
    return this.#status;
  }

  createStream(options: StreamOptions): Stream {
    return new Stream(this.#host, options);
  }

  /**
   * Connects to a destination as a push would, sending no media, and tells whether it is reachable
   * and the application (and, with `publish`, the key) accepted. Rejects when the gateway refuses
   * the check itself (a URL it cannot use, a host its policy refuses: `error.field` names it).
   */
  async checkDestination(options: CheckOptions): Promise<CheckReport> {
    const { rtmpUrl, rtmpTransponderFullUrl, publish, name = 'check', token = this.#token } = options;
    const answer = await this.#call({
      type: 'checkDestination',
      requestId: '',
      name,
      rtmpUrl,
      ...(rtmpTransponderFullUrl !== undefined ? { rtmpTransponderFullUrl } : {}),
      ...(publish !== undefined ? { publish } : {}),
      ...(token ? { token } : {}),
    });
    return (answer as Extract<ServerMessage, { type: 'destinationChecked' }>).report;
  }

  /**
   * Starts a mixer (`mixer://name`: the fields of `/rest-api/mixer/startup`), which the session's
   * token must allow (its `mixers` grant). It ends when the session does. Streams join it with
   * `stream.joinMixer`. Rejects with the gateway's error (`error.field` names what was wrong).
   */
  async startMixer(options: MixerOptions): Promise<MixerInfo> {
    const answer = await this.#call({
      type: 'startMixer',
      requestId: '',
      mixer: options,
      ...(this.#token ? { token: this.#token } : {}),
    });
    return (answer as Extract<ServerMessage, { type: 'mixer' }>).mixer;
  }

  /** Ends every stream of the session and the connection; nothing is reconnected. */
  disconnect(): void {
    this.#closing = true;
    clearTimeout(this.#retry);
    for (const stream of this.#streams) stream.closed('session disconnected');
    this.#socket?.close(1000, 'disconnected by the client');
    if (this.#status !== 'DISCONNECTED')
      this.#setStatus({ status: 'DISCONNECTED', info: 'disconnected by the client' });
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
      if (socket !== this.#socket || this.#closing) return;
      // Closed for publishing nothing in time: nothing was lost, so connect again without a word.
      // Messages sent meanwhile wait for the new connection's hello.
      if (
        event.code === IDLE_CLOSE_CODE &&
        this.#status === 'ESTABLISHED' &&
        this.#streams.size === 0 &&
        !this.#quiet
      ) {
        this.#quiet = [];
        return this.#connect();
      }
      // A node that drains asks to be left at once: the load balancer sends the new connection elsewhere.
      this.#lost(
        event.reason || (this.#status === 'NEW' ? 'cannot reach the gateway' : 'connection to the gateway lost'),
        event.code === MOVE_CLOSE_CODE,
      );
    };
  }

  /** The connection dropped or could not be made: reconnect after a wait (none when `now`), or give up. */
  #lost(info: string, now = false): void {
    if (this.#closing) return;
    this.#quiet = undefined;
    this.#requests.clear();
    for (const call of this.#calls.values()) call.reject(new Error(`not answered: ${info}`));
    this.#calls.clear();
    if (this.#policy && this.#status !== 'NEW' && mayReconnect(this.#policy, this.#attempt + 1)) {
      const attempt = ++this.#attempt;
      const delayMs = now && attempt === 1 ? 0 : reconnectDelay(this.#policy, attempt, Math.random());
      for (const stream of this.#streams) stream.connectionLost(info, this.#attempt, delayMs);
      this.#setStatus({ status: 'RECONNECTING', info, attempt: this.#attempt, delayMs });
      this.#retry = setTimeout(() => this.#connect(), delayMs);
      return;
    }
    for (const stream of this.#streams) stream.closed(info);
    this.#setStatus(this.#status === 'NEW' ? { status: 'FAILED', info } : { status: 'DISCONNECTED', info });
  }

  #connected(): boolean {
    return this.#status === 'ESTABLISHED' && (this.#quiet !== undefined || this.#socket?.readyState === WebSocket.OPEN);
  }

  /** Sends a request and resolves with its answer; rejects with the gateway's error (its `code` and `field` on it). */
  #call(message: ClientMessage | StartMixerMessage): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      if (!this.#connected()) return reject(new Error('the session is not connected'));
      this.#calls.set(this.#send(message), { resolve, reject });
    });
  }

  /** Sends a message; a request's answer (or error) goes to `stream`, about `destination` when given. */
  #send(message: ClientMessage | StartMixerMessage, stream?: StreamLink, destination?: string): string {
    const requestId = String(++this.#requestCount);
    if (stream) this.#requests.set(requestId, { stream, destination });
    const text = JSON.stringify('requestId' in message ? { ...message, requestId } : message);
    if (this.#quiet) this.#quiet.push(text);
    else this.#socket?.send(text);
    return requestId;
  }

  #setStatus(event: SessionEvent): void {
    this.#status = event.status;
    this.emit(event);
  }

  #onMessage(message: ServerMessage): void {
    if (message.type === 'hello' && this.#quiet) {
      const waiting = this.#quiet;
      this.#quiet = undefined;
      for (const text of waiting) this.#socket?.send(text);
      return;
    }
    if (message.type === 'hello') {
      this.#captionsChannel = message.captionsChannel === true;
      this.#videoCodecs = message.videoCodecs ?? ['H264'];
      const reconnected = this.#status === 'RECONNECTING';
      this.#attempt = 0;
      this.#setStatus({ status: 'ESTABLISHED', ...(reconnected ? { info: 'reconnected' } : {}) });
      if (reconnected) for (const stream of this.#streams) stream.republish();
      return;
    }
    const call =
      'requestId' in message && message.requestId !== undefined ? this.#calls.get(message.requestId) : undefined;
    if (call && 'requestId' in message) {
      this.#calls.delete(message.requestId!);
      if (message.type === 'error')
        call.reject(Object.assign(new Error(message.message), { code: message.code, field: message.field }));
      else call.resolve(message);
      return;
    }
    if ('requestId' in message && message.requestId !== undefined) {
      const request = this.#requests.get(message.requestId);
      if (!request) return;
      this.#requests.delete(message.requestId);
      request.stream.reply(message, request.destination);
      return;
    }
    if ('name' in message)
      for (const stream of this.#streams) if (stream.name === message.name) stream.message(message);
  }
}
