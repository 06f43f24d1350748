import type { VideoCodec } from '../media/codecs.js';
import type { IncomingMessage } from 'node:http';
import { CaptionFlood } from '../captions/flood.js';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AccessControl } from '../security/access.js';
import { GatewayError, statusFor } from '../core/errors.js';
import type { DestinationChecks } from '../control/destination-checks.js';
import type { MediaPlane } from '../plane/plane.js';
import { MAX_SIGNALING_MESSAGE_BYTES } from './messages.js';
import { MOVE_CLOSE_CODE, SIGNALING_PATH } from './protocol.js';
import { SignalingSession } from './session.js';
import { ClientQuota } from '../security/client-quota.js';

/** The client address of an upgrade request, as fastify's trust_proxy setting would see it. */
export type ClientAddress = (request: IncomingMessage) => string;

export interface SignalingOptions {
  clientAddress?: ClientAddress;
  /** WebSockets open at once, from every client together (`limit_signaling_sessions`). */
  maxSessions?: number;
  /** A session that has published nothing by then is closed (`signaling_idle_timeout_ms`). */
  idleTimeoutMs?: number;
  /** Captions per client, shared with the REST API's. */
  captionFlood?: CaptionFlood;
  /** Whether publishers may send captions on a data channel (`PUBLISHER_CHANNELS`): the mediasoup engine. */
  captionsChannel?: boolean;
  /** The video codecs publishes may use, most preferred first (`webrtc_video_codecs`). */
  videoCodecs?: readonly VideoCodec[];
}

/**
 * WebSocket signalling for the browser SDK. One connection is one SDK session: the streams it
 * publishes end when it disconnects. The upgrade passes the gateway's name, origin and per-client
 * checks; every message is validated, and a bad one gets an `error` reply naming the field and
 * changes nothing. A malformed frame (bad masking, invalid UTF-8, a reserved opcode or close code,
 * over 64 KiB) ends that connection with the matching close code, and only it.
 */
export class SignalingServer {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_SIGNALING_MESSAGE_BYTES });
  readonly #clientAddress: ClientAddress;
  readonly #sessions: ClientQuota;
  #draining = false;

  constructor(
    plane: MediaPlane,
    destinations: DestinationChecks,
    private readonly access: AccessControl,
    private readonly log: Logger,
    options: SignalingOptions = {},
  ) {
    this.#clientAddress = options.clientAddress ?? ((request) => request.socket.remoteAddress ?? 'unknown');
    // Per client, SDK sessions count with WHIP sessions (access.quota); here, every client together.
    this.#sessions = new ClientQuota({ total: options.maxSessions, totalKey: 'limit_signaling_sessions' });
    const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    const captions = { flood: options.captionFlood ?? new CaptionFlood(), channel: options.captionsChannel ?? false };
    const sessionLog = log.child({ component: 'signaling' });
    this.#wss.on('connection', (socket: WebSocket, request: IncomingMessage, release: () => void) => {
      socket.on('close', release);
      new SignalingSession(
        socket,
        plane,
        destinations,
        access,
        captions,
        options.videoCodecs ?? ['H264'],
        this.#clientAddress(request),
        sessionLog,
        idleTimeoutMs,
      );
    });
    this.#wss.on('error', (error) => sessionLog.warn({ err: error }, 'signalling server error'));
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A client that resets mid-handshake must not take the process with it.
    socket.on('error', () => socket.destroy());
    const path = (request.url ?? '').split('?')[0];
    if (path !== SIGNALING_PATH) return refuseUpgrade(socket, 404, 'no WebSocket here');
    if (this.#draining) return refuseUpgrade(socket, 503, 'this node is draining: connect through another');
    let release: () => void;
    try {
      this.access.guard.origins.checkHost(request.headers.host);
      this.access.guard.origins.checkOrigin(request.headers.origin, request.headers.host);
      const client = this.access.quota.acquire(this.#clientAddress(request), 'SDK session');
      let total: () => void;
      try {
        total = this.#sessions.acquire('', 'SDK session');
      } catch (error) {
        client();
        throw error;
      }
      release = () => {
        client();
        total();
      };
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

  /** The node drains: no new session, and each open one is asked to connect again elsewhere at once. */
  drain(): void {
    this.#draining = true;
    for (const client of this.#wss.clients) client.close(MOVE_CLOSE_CODE, 'this node is draining: connect again');
  }

  close(): void {
    for (const client of this.#wss.clients) client.close(1001, 'gateway shutting down');
    this.#wss.close();
  }
}

function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ error: 'refused', message });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Refused'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};
