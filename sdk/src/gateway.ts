/**
 * Browser SDK for the gateway: publish the camera over WebRTC and, with `rtmpUrl`, have the gateway
 * republish it to an RTMP destination as soon as it is publishing.
 *
 *   const session = createSession({ urlServer: 'ws://localhost:8080' });
 *   session.on(SESSION_STATUS.ESTABLISHED, () => {
 *     session.createStream({ name: 'test', display: el, rtmpUrl: 'rtmp://host/live' })
 *       .on(STREAM_STATUS.PUBLISHING, () => console.log('live'))
 *       .publish();
 *   });
 */

import { SIGNALING_PATH, type ClientMessage, type ServerMessage } from '../../src/signaling/protocol.js';

export const SESSION_STATUS = { ESTABLISHED: 'ESTABLISHED', DISCONNECTED: 'DISCONNECTED', FAILED: 'FAILED' } as const;
export const STREAM_STATUS = { PUBLISHING: 'PUBLISHING', UNPUBLISHED: 'UNPUBLISHED', FAILED: 'FAILED' } as const;

export type SessionStatus = (typeof SESSION_STATUS)[keyof typeof SESSION_STATUS] | 'NEW';
export type StreamStatus = (typeof STREAM_STATUS)[keyof typeof STREAM_STATUS] | 'NEW' | 'PENDING';

export interface SessionOptions {
  /** The gateway's address: `ws://host:8080`, `wss://host`, or an http(s) URL of the same server. */
  urlServer: string;
  /**
   * A publish token from your backend (a publish key or a JWT it signed), sent with each publish
   * over the WebSocket, never in a URL. Needed when the gateway requires publish authorization.
   */
  token?: string;
}

export interface StreamOptions {
  name: string;
  /** An element to show the local preview in (a <video> is created inside it), or a <video> itself. */
  display?: HTMLElement;
  /** getUserMedia constraints; by default 1280x720 video and audio. */
  constraints?: MediaStreamConstraints;
  /** Republish to this RTMP(S) URL once publishing. */
  rtmpUrl?: string;
  /** Take the RTMP stream name from the URL's last path segment instead of prefix + name. */
  rtmpTransponderFullUrl?: boolean;
  /** Publish this stream instead of asking for the camera. */
  mediaStream?: MediaStream;
  /** A publish token for this stream, instead of the session's. */
  token?: string;
}

/** Details passed to status handlers: `info` says why for UNPUBLISHED and FAILED. */
export interface StatusEvent {
  status: string;
  info?: string;
  field?: string;
}

type Handler = (event: StatusEvent) => void;

class Emitter {
  readonly #handlers = new Map<string, Handler[]>();
  on(status: string, handler: Handler): this {
    this.#handlers.set(status, [...(this.#handlers.get(status) ?? []), handler]);
    return this;
  }
  protected emit(event: StatusEvent): void {
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

export class Session extends Emitter {
  #status: SessionStatus = 'NEW';
  readonly #socket: WebSocket;
  readonly #streams = new Map<string, Stream>();
  #requests = 0;

  /** @internal */
  readonly _token: string | undefined;

  constructor(options: SessionOptions) {
    super();
    this._token = options.token;
    this.#socket = new WebSocket(signalingUrl(options.urlServer));
    this.#socket.onmessage = (event) => this.#onMessage(JSON.parse(String(event.data)) as ServerMessage);
    this.#socket.onerror = () => {
      if (this.#status === 'NEW') this.#setStatus('FAILED', 'cannot reach the gateway');
    };
    this.#socket.onclose = (event) => {
      if (this.#status === 'ESTABLISHED') this.#setStatus('DISCONNECTED', event.reason || 'connection closed');
      for (const stream of this.#streams.values()) stream._closed('session disconnected');
      this.#streams.clear();
    };
  }

  status(): SessionStatus {
    return this.#status;
  }

  createStream(options: StreamOptions): Stream {
    return new Stream(this, options);
  }

  disconnect(): void {
    this.#socket.close(1000, 'disconnected by the client');
  }

  /** @internal */
  _send(message: ClientMessage): void {
    this.#socket.send(JSON.stringify(message));
  }

  /** @internal */
  _register(stream: Stream): string {
    this.#streams.set(stream.name(), stream);
    return String(++this.#requests);
  }

  #setStatus(status: SessionStatus, info?: string): void {
    this.#status = status;
    this.emit({ status, info });
  }

  #onMessage(message: ServerMessage): void {
    if (message.type === 'hello') {
      this.#setStatus('ESTABLISHED');
      return;
    }
    const stream = [...this.#streams.values()].find(
      (s) => ('requestId' in message && s._requestId === message.requestId) || ('name' in message && s.name() === message.name),
    );
    if (!stream) return;
    stream._onMessage(message);
    if (stream.status() === 'UNPUBLISHED' || stream.status() === 'FAILED') this.#streams.delete(stream.name());
  }
}

export class Stream extends Emitter {
  #status: StreamStatus = 'NEW';
  #pc: RTCPeerConnection | undefined;
  #media: MediaStream | undefined;
  #ownsMedia = false;
  /** @internal */
  _requestId: string | undefined;

  constructor(
    private readonly session: Session,
    private readonly options: StreamOptions,
  ) {
    super();
  }

  name(): string {
    return this.options.name;
  }

  status(): StreamStatus {
    return this.#status;
  }

  /** WebRTC statistics of the publishing connection (bitrate, frames sent, ...). */
  async getStats(): Promise<RTCStatsReport | undefined> {
    return this.#pc?.getStats();
  }

  /** The published media, once publish() has obtained it. */
  getMediaStream(): MediaStream | undefined {
    return this.#media;
  }

  publish(): this {
    if (this.#status !== 'NEW') throw new Error(`stream ${this.options.name} was already published`);
    this.#status = 'PENDING';
    const requestId = (this._requestId = this.session._register(this));
    this.#start(requestId).catch((error: unknown) => this.#fail(error instanceof Error ? error.message : String(error)));
    return this;
  }

  stop(): void {
    if (this.#status === 'PENDING' || this.#status === 'PUBLISHING') {
      this.session._send({ type: 'unpublish', name: this.options.name });
    }
    this._closed('stopped by the client');
  }

  async #start(requestId: string): Promise<void> {
    const media =
      this.options.mediaStream ??
      (await navigator.mediaDevices.getUserMedia(this.options.constraints ?? { audio: true, video: { width: 1280, height: 720 } }));
    this.#ownsMedia = !this.options.mediaStream;
    this.#media = media;
    this.#showPreview(media);
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.#pc = pc;
    for (const track of media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video') preferH264(transceiver);
    }
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.#fail('WebRTC connection failed');
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await this.#keepResolution(pc);
    if (!offer.sdp) throw new Error('the browser made no SDP offer');
    this.session._send({
      type: 'publish',
      requestId,
      name: this.options.name,
      sdp: offer.sdp,
      ...(this.options.rtmpUrl !== undefined ? { rtmpUrl: this.options.rtmpUrl } : {}),
      ...(this.options.rtmpTransponderFullUrl !== undefined ? { rtmpTransponderFullUrl: this.options.rtmpTransponderFullUrl } : {}),
      ...((this.options.token ?? this.session._token) !== undefined ? { token: this.options.token ?? this.session._token } : {}),
    });
  }

  /** Platforms dislike mid-stream resolution changes: lower the frame rate instead under load. */
  async #keepResolution(pc: RTCPeerConnection): Promise<void> {
    for (const sender of pc.getSenders()) {
      if (sender.track?.kind !== 'video') continue;
      const parameters = sender.getParameters() as RTCRtpSendParameters & { degradationPreference?: string };
      parameters.degradationPreference = 'maintain-resolution';
      await sender.setParameters(parameters).catch(() => {});
    }
  }

  #showPreview(media: MediaStream): void {
    const display = this.options.display;
    if (!display) return;
    let video = display instanceof HTMLVideoElement ? display : display.querySelector('video');
    if (!video) {
      video = document.createElement('video');
      video.style.width = '100%';
      display.appendChild(video);
    }
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = media;
  }

  /** @internal */
  _onMessage(message: ServerMessage): void {
    if (message.type === 'answer' && message.sdp && this.#pc) {
      this.#pc.setRemoteDescription({ type: 'answer', sdp: message.sdp }).catch((error: unknown) => this.#fail(String(error)));
    } else if (message.type === 'error') {
      this.#fail(message.message || 'the gateway refused the stream', message.field);
    } else if (message.type === 'status' && message.status === 'PUBLISHING') {
      this.#status = 'PUBLISHING';
      this.emit({ status: 'PUBLISHING' });
    } else if (message.type === 'status' && message.status === 'UNPUBLISHED') {
      this._closed(message.info ?? 'unpublished');
    } else if (message.type === 'transponder' && message.error) {
      const what = message.state === 'reconnecting' ? 'reconnecting after' : 'failed';
      console.warn(`gateway: republishing ${this.options.name} ${what}: ${message.error}`);
    }
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
    this.#pc?.close();
    this.#pc = undefined;
    if (this.#ownsMedia) for (const track of this.#media?.getTracks() ?? []) track.stop();
  }
}

/** Orders H.264 packetization-mode=1 constrained baseline first, then other H.264, then the rest. */
function preferH264(transceiver: RTCRtpTransceiver): void {
  const capabilities = RTCRtpSender.getCapabilities?.('video');
  if (!capabilities || typeof transceiver.setCodecPreferences !== 'function') return;
  const rank = (codec: RTCRtpCodec): number => {
    const fmtp = codec.sdpFmtpLine ?? '';
    if (codec.mimeType.toLowerCase() !== 'video/h264') return /rtx|red|ulpfec/i.test(codec.mimeType) ? 9 : 5;
    if (!fmtp.includes('packetization-mode=1')) return 4;
    if (fmtp.includes('profile-level-id=42e01f')) return 0;
    return fmtp.includes('profile-level-id=42') ? 1 : 2;
  };
  const sorted = [...capabilities.codecs].sort((a, b) => rank(a) - rank(b));
  try {
    transceiver.setCodecPreferences(sorted);
  } catch {
    // Older browsers: the gateway still picks H.264 from the offer.
  }
}
