import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { authorizePublish, type AccessControl } from '../security/access.js';
import { GatewayError, statusFor } from '../errors.js';
import { offerError } from '../ingest/sdp.js';
import type { DestinationChecks } from '../plane/core.js';
import type { MediaPlane, TransponderChange } from '../plane/plane.js';
import { isActive } from '../transponders/states.js';
import { checkHost, checkOrigin } from '../http/guard.js';
import { clientMessageSchema, MAX_SIGNALING_MESSAGE_BYTES } from '../http/schemas.js';
import { PROTOCOL_VERSION, SIGNALING_PATH, type ClientMessage, type PublishMessage, type ServerMessage } from './protocol.js';
import { parseBody } from '../http/validation.js';


/** The client address of an upgrade request, as fastify's trust_proxy setting would see it. */
export type ClientAddress = (request: IncomingMessage) => string;

/**
 * WebSocket signalling for the browser SDK. One connection is one SDK session: the streams it
 * publishes end when it disconnects. The upgrade passes the gateway's name, origin and per-client
 * checks; every message is validated, and a bad one gets an `error` reply naming the field and
 * changes nothing. A malformed frame (bad masking, invalid UTF-8, a reserved opcode or close code,
 * over 64 KiB) ends that connection with the matching close code, and only it.
 */
export class SignalingServer {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_SIGNALING_MESSAGE_BYTES });

  constructor(
    plane: MediaPlane,
    destinations: DestinationChecks,
    private readonly access: AccessControl,
    private readonly log: Logger,
    private readonly clientAddress: ClientAddress = (request) => request.socket.remoteAddress ?? 'unknown',
  ) {
    const sessionLog = log.child({ component: 'signaling' });
    this.#wss.on('connection', (socket: WebSocket, request: IncomingMessage, release: () => void) => {
      socket.on('close', release);
      new SignalingSession(socket, plane, destinations, access, this.clientAddress(request), sessionLog);
    });
    this.#wss.on('error', (error) => sessionLog.warn({ err: error }, 'signalling server error'));
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A client that resets mid-handshake must not take the process with it.
    socket.on('error', () => socket.destroy());
    const path = (request.url ?? '').split('?')[0];
    if (path !== SIGNALING_PATH) return refuseUpgrade(socket, 404, 'no WebSocket here');
    let release: () => void;
    try {
      checkHost(this.access.guard, request.headers.host);
      checkOrigin(this.access.guard, request.headers.origin, request.headers.host);
      release = this.access.quota.acquire(this.clientAddress(request), 'SDK session');
    } catch (error) {
      const status = error instanceof GatewayError ? statusFor(error.code) : 400;
      return refuseUpgrade(socket, status, error instanceof Error ? error.message : 'refused');
    }
    try {
      this.#wss.handleUpgrade(request, socket, head, (ws) => this.#wss.emit('connection', ws, request, release));
    } catch (error) {
      release();
      this.log.debug({ err: error }, 'WebSocket upgrade failed');
      socket.destroy();
    }
  }

  close(): void {
    for (const client of this.#wss.clients) client.close(1001, 'gateway shutting down');
    this.#wss.close();
  }
}

function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ error: 'refused', message });
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Refused'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' };

class SignalingSession {
  /** This session's publishes: stream name to publisher id. */
  readonly #streams = new Map<string, string>();
  /** The transponders this session follows (id to stream name), and what stops following them all. */
  readonly #followed = new Map<string, string>();
  #unwatch: (() => void) | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly plane: MediaPlane,
    private readonly destinations: DestinationChecks,
    private readonly access: AccessControl,
    private readonly client: string,
    private readonly log: Logger,
  ) {
    // ws closes the connection itself on a protocol error (1002, 1007, 1009): here it is only told.
    socket.on('error', (error) => log.debug({ reason: error.message, client }, 'signalling connection failed'));
    socket.on('message', (data, isBinary) => void this.#onMessage(isBinary ? '' : data.toString()));
    socket.on('close', () => {
      this.#unwatch?.();
      // The page was closed or its network went away: the publisher is lost, not ended.
      for (const [name, id] of this.#streams) void this.#unpublish(name, id, 'SDK session disconnected', true);
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
      else {
        const id = this.#streams.get(message.name);
        if (id !== undefined) await this.plane.unpublish(message.name, id, 'unpublished by the SDK');
      }
    } catch (error) {
      this.#sendError(error, 'requestId' in message ? message.requestId : undefined);
    }
  }

  async #publish(message: PublishMessage): Promise<void> {
    const { name, rtmpUrl, rtmpTransponderFullUrl } = message;
    // Checked before anything is created: a bad rtmpUrl or token never starts a publish.
    const destination = rtmpUrl === undefined ? undefined : this.destinations.checkDestination(rtmpUrl, name, rtmpTransponderFullUrl);
    await authorizePublish(this.access, { stream: name, token: message.token, client: this.client, destinationHost: destination?.host, redactedDestination: destination?.redactedRequestedUrl });
    if (destination) await this.destinations.checkAddresses(destination);
    const release = this.access.quota.acquire(this.client, 'SDK publish');
    let published: { id: string; answer: string };
    try {
      published = await this.plane.publish(name, message.sdp, {
        publishing: () => {
          this.#send({ type: 'status', name, status: 'PUBLISHING' });
          if (rtmpUrl !== undefined) this.#startTransponder(name, rtmpUrl, rtmpTransponderFullUrl);
        },
        closed: (reason) => {
          release();
          if (this.#streams.get(name) === published.id) this.#streams.delete(name);
          this.#send({ type: 'status', name, status: 'UNPUBLISHED', info: reason });
        },
      }, this.client);
    } catch (error) {
      release();
      throw offerError(error, 'sdp');
    }
    if (this.socket.readyState !== this.socket.OPEN) {
      await this.#unpublish(name, published.id, 'SDK session disconnected');
      return;
    }
    this.#streams.set(name, published.id);
    this.#send({ type: 'answer', requestId: message.requestId, sdp: published.answer });
  }

  async #unpublish(name: string, id: string, reason: string, lost = false): Promise<void> {
    try {
      await this.plane.unpublish(name, id, reason, lost);
    } catch (error) {
      this.log.warn({ stream: name, reason: (error as Error).message }, 'ending an SDK publish failed');
    }
  }

  #startTransponder(streamName: string, rtmpUrl: string, fullUrl: boolean | undefined): void {
    void (async () => {
      try {
        // A transponder that waited for this stream after its page was closed has taken it back.
        const resumed = (await this.plane.find({ streamName, rtmpUrl })).find((t) => isActive(t.state));
        this.#follow(streamName, resumed ?? (await this.plane.startup({ streamName, rtmpUrl, rtmpTransponderFullUrl: fullUrl })));
      } catch (error) {
        const message = error instanceof GatewayError ? error.message : 'transponder failed to start';
        const code = error instanceof GatewayError ? error.code : 'internal';
        this.log.warn({ stream: streamName, code, reason: message }, 'republishing from the SDK failed');
        this.#send({ type: 'transponder', name: streamName, state: 'failed', code, error: message });
      }
    })();
  }

  /** Tells the SDK of the transponder, and of its later states: reconnecting, running again, failed. */
  #follow(streamName: string, t: { mediaSessionId: string; state: TransponderChange['state'] }): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.#send({ type: 'transponder', name: streamName, mediaSessionId: t.mediaSessionId, state: t.state });
    this.#followed.set(t.mediaSessionId, streamName);
    this.#unwatch ??= this.plane.watch(({ mediaSessionId, state, lastError }) => {
      const name = this.#followed.get(mediaSessionId);
      if (name !== undefined) this.#send({ type: 'transponder', name, mediaSessionId, state, ...(lastError ? { error: lastError } : {}) });
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

  #send(message: ServerMessage): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }
}
