import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { GatewayError } from '../../errors.js';
import { OfferError } from '../../ingest/sdp.js';
import type { Publisher } from '../../publishers/publisher.js';
import type { PublisherRegistry } from '../../publishers/registry.js';
import type { TransponderService } from '../../transponders/service.js';
import type { Transponder } from '../../transponders/transponder.js';
import { clientMessageSchema, type ClientMessage } from '../schemas.js';
import { parseBody } from '../validation.js';

export const SIGNALING_PATH = '/ws';
export const PROTOCOL_VERSION = 1;
const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * WebSocket signalling for the browser SDK. One connection is one SDK session: the streams it
 * publishes end when it disconnects. Every message is validated; a bad one gets an `error` reply
 * naming the field and changes nothing.
 */
export class SignalingServer {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });

  constructor(publishers: PublisherRegistry, transponders: TransponderService, log: Logger) {
    this.#wss.on('connection', (socket) => new SignalingSession(socket, publishers, transponders, log.child({ component: 'signaling' })));
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (request.url ?? '').split('?')[0];
    if (path !== SIGNALING_PATH) {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#wss.emit('connection', ws, request));
  }

  close(): void {
    for (const client of this.#wss.clients) client.close(1001, 'gateway shutting down');
    this.#wss.close();
  }
}

class SignalingSession {
  readonly #streams = new Map<string, Publisher>();

  constructor(
    private readonly socket: WebSocket,
    private readonly publishers: PublisherRegistry,
    private readonly transponders: TransponderService,
    private readonly log: Logger,
  ) {
    socket.on('message', (data, isBinary) => void this.#onMessage(isBinary ? '' : data.toString()));
    socket.on('close', () => {
      // The page was closed or its network went away: the publisher is lost, not ended.
      for (const publisher of this.#streams.values()) void publisher.close('SDK session disconnected', true);
      this.#streams.clear();
    });
    this.#send({ type: 'hello', version: PROTOCOL_VERSION });
  }

  async #onMessage(text: string): Promise<void> {
    let message: ClientMessage;
    try {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new GatewayError('invalid_request', 'message: not valid JSON', 'message');
      }
      message = parseBody(clientMessageSchema, json);
    } catch (error) {
      this.#sendError(error);
      return;
    }
    try {
      if (message.type === 'publish') await this.#publish(message);
      else await this.#streams.get(message.name)?.close('unpublished by the SDK');
    } catch (error) {
      this.#sendError(error, 'requestId' in message ? message.requestId : undefined);
    }
  }

  async #publish(message: Extract<ClientMessage, { type: 'publish' }>): Promise<void> {
    const { name, rtmpUrl, rtmpTransponderFullUrl } = message;
    // Checked before anything is created: a bad rtmpUrl never starts a publish.
    if (rtmpUrl !== undefined) this.transponders.checkDestination(rtmpUrl, name, rtmpTransponderFullUrl);
    let publisher: Publisher;
    try {
      publisher = await this.publishers.publish(name, message.sdp);
    } catch (error) {
      if (error instanceof OfferError) throw new GatewayError('invalid_request', `sdp: ${error.message}`, 'sdp');
      throw error;
    }
    if (this.socket.readyState !== this.socket.OPEN) {
      await publisher.close('SDK session disconnected');
      return;
    }
    this.#streams.set(name, publisher);
    publisher.on('publishing', () => {
      this.#send({ type: 'status', name, status: 'PUBLISHING' });
      if (rtmpUrl !== undefined) this.#startTransponder(name, rtmpUrl, rtmpTransponderFullUrl);
    });
    publisher.on('closed', (reason) => {
      if (this.#streams.get(name) === publisher) this.#streams.delete(name);
      this.#send({ type: 'status', name, status: 'UNPUBLISHED', info: reason });
    });
    this.#send({ type: 'answer', requestId: message.requestId, sdp: publisher.session.answer });
  }

  #startTransponder(streamName: string, rtmpUrl: string, fullUrl: boolean | undefined): void {
    // A transponder that waited for this stream after its page was closed has taken it back.
    const resumed = this.transponders.find({ streamName, rtmpUrl }).find((t) => t.isActive);
    if (resumed) return this.#follow(streamName, resumed);
    this.transponders.startup({ streamName, rtmpUrl, rtmpTransponderFullUrl: fullUrl }).then(
      (t) => this.#follow(streamName, t),
      (error: unknown) => {
        const message = error instanceof GatewayError ? error.message : 'transponder failed to start';
        this.log.warn({ stream: streamName, reason: message }, 'republishing from the SDK failed');
        this.#send({ type: 'transponder', name: streamName, state: 'failed', error: message });
      },
    );
  }

  /** Tells the SDK of the transponder, and of its later states: reconnecting, running again, failed. */
  #follow(streamName: string, t: Transponder): void {
    this.#send({ type: 'transponder', name: streamName, mediaSessionId: t.mediaSessionId, state: t.state });
    t.on('state', (state) => {
      const error = state === 'reconnecting' || state === 'failed' ? t.lastError : undefined; // lastError holds no secret
      this.#send({ type: 'transponder', name: streamName, mediaSessionId: t.mediaSessionId, state, ...(error ? { error } : {}) });
    });
  }

  #sendError(error: unknown, requestId?: string): void {
    if (error instanceof GatewayError) {
      this.#send({ type: 'error', requestId, code: error.code, message: error.message, field: error.field });
    } else {
      this.log.error({ err: error }, 'signalling request failed');
      this.#send({ type: 'error', requestId, code: 'internal', message: 'internal error' });
    }
  }

  #send(message: Record<string, unknown>): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }
}
