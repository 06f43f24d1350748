import type { VideoCodec } from '../media/codecs.js';
import type { Logger } from 'pino';
import type { CaptionFlood } from '../captions/flood.js';
import type { RawData, WebSocket } from 'ws';
import { authorizePublish, type AccessControl } from '../security/access.js';
import { GatewayError } from '../core/errors.js';
import { asSdpError } from '../ingest/sdp.js';
import type { DestinationChecks } from '../control/destination-checks.js';
import type { MediaPlane } from '../plane/plane.js';
import type { Destination } from '../links/destination.js';
import { clientMessageSchema, MAX_DESTINATIONS } from './messages.js';
import { parseBody } from '../core/validation.js';
import {
  IDLE_CLOSE_CODE,
  PROTOCOL_VERSION,
  type AddDestinationMessage,
  type CheckDestinationMessage,
  type ClientMessage,
  type DestinationRequest,
  type JoinMixerMessage,
  type PublishMessage,
  type ServerMessage,
} from './protocol.js';
import { mixerName } from '../mixers/requests.js';
import { StreamPushes } from './stream-pushes.js';

/** A text message as ws hands it: one buffer, its fragments, or an ArrayBuffer. */
const textOf = (data: RawData): string =>
  (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString();

/** A stream this session publishes (or published), with its destinations. */
interface SessionStream {
  pushes: StreamPushes;
  token: string | undefined;
  /** The current publish, until it closes. */
  publisherId?: string;
  /**
   * The publish that was lost (its connection closed first), whose pushes wait in standby: an
   * unpublish that comes after still ends them.
   */
  lostPublisherId?: string;
}

/**
 * One SDK session: one WebSocket. Its streams end when it disconnects (as lost publishers: their
 * pushes wait in standby for the page to come back). Every message is validated; a bad one
 * gets an `error` naming the field and changes nothing.
 */
export class SignalingSession {
  readonly #streams = new Map<string, SessionStream>();
  /** The mixers this session started, by URI, with when each started: they end with it. */
  readonly #mixers = new Map<string, string>();
  readonly #unwatch: () => void;
  /** Until the first publish is answered: a session that never authenticates or publishes is closed. */
  #idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly plane: MediaPlane,
    private readonly destinations: DestinationChecks,
    private readonly access: AccessControl,
    private readonly captions: { flood: CaptionFlood; channel: boolean },
    /** The video codecs the gateway takes, most preferred first (`webrtc_video_codecs`), told in hello. */
    videoCodecs: readonly VideoCodec[],
    private readonly client: string,
    private readonly log: Logger,
    idleTimeoutMs = 30_000,
  ) {
    this.#idle = setTimeout(
      () => socket.close(IDLE_CLOSE_CODE, 'nothing published in time (signaling_idle_timeout_ms)'),
      idleTimeoutMs,
    ).unref();
    this.#unwatch = plane.watch((change) => {
      for (const stream of this.#streams.values()) stream.pushes.onChange(change);
    });
    // ws closes the connection itself on a protocol error (1002, 1007, 1009): here it is only told.
    socket.on('error', (error) => log.debug({ reason: error.message, client }, 'signalling connection failed'));
    socket.on('message', (data, isBinary) => void this.#onMessage(isBinary ? '' : textOf(data)));
    socket.on('close', () => {
      clearTimeout(this.#idle);
      this.#unwatch();
      // The page was closed or its network went away: the publisher is lost, not ended.
      for (const [name, stream] of this.#streams) {
        stream.pushes.close();
        if (stream.publisherId !== undefined)
          void this.#unpublish(name, stream.publisherId, 'SDK session disconnected', true);
      }
      this.#streams.clear();
      for (const [uri, createdAt] of this.#mixers) void this.#endMixer(uri, createdAt);
      this.#mixers.clear();
    });
    this.#send({
      type: 'hello',
      version: PROTOCOL_VERSION,
      captionsChannel: captions.channel,
      videoCodecs: [...videoCodecs],
    });
  }

  async #onMessage(text: string): Promise<void> {
    let message: ClientMessage;
    let json: unknown;
    try {
      try {
        json = JSON.parse(text);
      } catch {
        throw new GatewayError('invalid_request', 'message: not valid JSON', 'message');
      }
      message = parseBody(clientMessageSchema, json);
    } catch (error) {
      // A refused request is answered under its id when it has a usable one, so the client knows which.
      const requestId = (json as { requestId?: unknown } | undefined)?.requestId;
      this.#sendError(error, typeof requestId === 'string' && requestId.length <= 64 ? requestId : undefined);
      return;
    }
    try {
      switch (message.type) {
        case 'publish':
          return await this.#publish(message);
        case 'addDestination':
          return await this.#addDestination(message);
        case 'removeDestination':
          return await this.#stream(message.name).pushes.remove(message.id);
        case 'checkDestination':
          return await this.#checkOnly(message);
        case 'startMixer':
          return await this.#startMixer(message);
        case 'joinMixer':
          return await this.#joinMixer(message);
        case 'leaveMixer': {
          this.#stream(message.name);
          const mixer = await this.plane.mixerRemove({ uri: message.uri, remoteStreamName: message.name });
          return this.#send({ type: 'mixer', requestId: message.requestId, mixer });
        }
        case 'caption': {
          this.#stream(message.name);
          this.captions.flood.take(this.client);
          const { pushes, at } = await this.plane.caption(message.name, message.text, message.final, message.at);
          return this.#send({ type: 'captioned', requestId: message.requestId, pushes, at });
        }
        case 'unpublish': {
          const stream = this.#streams.get(message.name);
          const id = stream?.publisherId ?? stream?.lostPublisherId;
          if (stream) stream.lostPublisherId = undefined;
          if (id !== undefined) await this.plane.unpublish(message.name, id, 'unpublished by the SDK');
          return;
        }
      }
    } catch (error) {
      this.#sendError(error, 'requestId' in message ? message.requestId : undefined);
    }
  }

  async #publish(message: PublishMessage): Promise<void> {
    const { name, token } = message;
    const requests: DestinationRequest[] =
      message.destinations ??
      (message.rtmpUrl !== undefined
        ? [{ id: 'rtmpUrl', rtmpUrl: message.rtmpUrl, rtmpTransponderFullUrl: message.rtmpTransponderFullUrl }]
        : []);
    // Checked before anything is created: a bad destination or token never starts a publish.
    if (requests.length === 0) await authorizePublish(this.access, { stream: name, token, client: this.client });
    const checked: Destination[] = [];
    for (const [i, request] of requests.entries()) {
      checked.push(
        await this.#checkDestination(
          name,
          request,
          token,
          message.destinations ? `destinations.${i}.rtmpUrl` : 'rtmpUrl',
        ),
      );
    }
    // Published again by this session (its peer connection failed): the new publish takes over.
    const previous = this.#streams.get(name);
    if (previous) {
      this.#streams.delete(name);
      previous.pushes.close();
      if (previous.publisherId !== undefined)
        await this.#unpublish(name, previous.publisherId, 'published again by the SDK', true);
    }
    const pushes = new StreamPushes(name, this.plane, (m) => this.#send(m), this.log);
    requests.forEach((request, i) => pushes.add(request, checked[i]!));
    const stream: SessionStream = { pushes, token };
    this.#streams.set(name, stream);
    const current = (): boolean => this.#streams.get(name) === stream;
    const release = this.access.quota.acquire(this.client, 'SDK publish');
    let published: { id: string; answer: string };
    try {
      published = await this.plane.publish(
        name,
        message.sdp,
        {
          publishing: () => {
            if (!current()) return;
            this.#send({ type: 'status', name, status: 'PUBLISHING' });
            pushes.publishing();
          },
          closed: (reason, lost) => {
            release();
            if (!current()) return;
            if (lost) stream.lostPublisherId = stream.publisherId;
            stream.publisherId = undefined;
            this.#send({ type: 'status', name, status: 'UNPUBLISHED', info: reason, ...(lost ? { lost } : {}) });
          },
        },
        this.client,
      );
    } catch (error) {
      release();
      if (current()) this.#streams.delete(name);
      throw asSdpError(error);
    }
    if (this.socket.readyState !== this.socket.OPEN) {
      await this.#unpublish(name, published.id, 'SDK session disconnected');
      return;
    }
    stream.publisherId = published.id;
    clearTimeout(this.#idle);
    this.#send({ type: 'answer', requestId: message.requestId, sdp: published.answer });
  }

  async #addDestination(message: AddDestinationMessage): Promise<void> {
    const { name, destination: request } = message;
    const stream = this.#stream(name);
    // Refused before the checks below, which may ask DNS or the authorization hook; checked again on add.
    stream.pushes.checkNewId(request.id);
    if (stream.pushes.size >= MAX_DESTINATIONS)
      throw new GatewayError(
        'invalid_request',
        `destination: a stream has at most ${MAX_DESTINATIONS} destinations`,
        'destination',
      );
    const destination = await this.#checkDestination(name, request, stream.token, 'destination.rtmpUrl');
    stream.pushes.add(request, destination);
    this.#send({ type: 'destinationAdded', requestId: message.requestId, name, id: request.id });
  }

  /** A destination checked before going live: the checks of a push's destination, then a connection without media. */
  async #checkOnly(message: CheckDestinationMessage): Promise<void> {
    const { name, rtmpUrl, rtmpTransponderFullUrl, publish } = message;
    await this.#checkDestination(
      name,
      { id: 'check', rtmpUrl, rtmpTransponderFullUrl },
      message.token ?? this.#streams.get(name)?.token,
      'rtmpUrl',
    );
    // Counted with the client's publishes: a page cannot make the gateway open connections without end.
    const release = this.access.quota.acquire(this.client, 'destination check');
    try {
      const report = await this.destinations.check(
        { rtmpUrl, rtmpTransponderFullUrl, streamName: name, publish },
        this.client,
      );
      this.#send({ type: 'destinationChecked', requestId: message.requestId, report });
    } finally {
      release();
    }
  }

  /**
   * Starts a mixer for this session, which its token must allow (the `mixers` grant, and the
   * `streams` grant for the stream the mixer publishes); it ends when the session does.
   */
  async #startMixer(message: Extract<ClientMessage, { type: 'startMixer' }>): Promise<void> {
    const { mixer: request } = message;
    const name = mixerName(request.uri);
    const token = message.token ?? [...this.#streams.values()].find((s) => s.token !== undefined)?.token;
    await authorizePublish(this.access, {
      stream: request.localStreamName ?? name,
      token,
      client: this.client,
      mixer: name,
    });
    const mixer = await this.plane.mixerStartup(request);
    if (this.socket.readyState !== this.socket.OPEN) {
      await this.#endMixer(request.uri, mixer.createdAt);
      return;
    }
    this.#mixers.set(request.uri, mixer.createdAt);
    this.#send({ type: 'mixer', requestId: message.requestId, mixer });
  }

  /** Adds a stream this session publishes to a mixer its publish token allows. */
  async #joinMixer(message: JoinMixerMessage): Promise<void> {
    const stream = this.#stream(message.name);
    await authorizePublish(this.access, {
      stream: message.name,
      token: stream.token,
      client: this.client,
      mixer: mixerName(message.uri),
    });
    const mixer = await this.plane.mixerAdd({
      uri: message.uri,
      remoteStreamName: message.name,
      slot: message.slot,
      label: message.label,
    });
    this.#send({ type: 'mixer', requestId: message.requestId, mixer });
  }

  /** Ends the mixer this session started, not one started since under the same URI. */
  async #endMixer(uri: string, createdAt: string): Promise<void> {
    try {
      await this.plane.mixerTerminate(uri, createdAt);
    } catch (error) {
      this.log.debug({ mixer: uri, reason: (error as Error).message }, "an SDK session's mixer had already ended");
    }
  }

  #stream(name: string): SessionStream {
    const stream = this.#streams.get(name);
    if (!stream) throw new GatewayError('not_found', `name: this session does not publish ${name}`, 'name');
    return stream;
  }

  /** The destination policy, the publish token's grant and the address checks, for one destination. */
  async #checkDestination(
    name: string,
    request: DestinationRequest,
    token: string | undefined,
    field: string,
  ): Promise<Destination> {
    try {
      const destination = this.destinations.checkDestination(request.rtmpUrl, name, request.rtmpTransponderFullUrl);
      // A token lets its publisher record with `record` among its destinations.
      const destinationHost = destination.protocol === 'record' ? 'record' : destination.host;
      await authorizePublish(this.access, {
        stream: name,
        token,
        client: this.client,
        destinationHost,
        redactedDestination: destination.redactedRequestedUrl,
      });
      await this.destinations.checkAddresses(destination);
      return destination;
    } catch (error) {
      // The checks name `rtmpUrl`; in a list, the error names the destination's place in it.
      if (error instanceof GatewayError && error.field === 'rtmpUrl' && field !== 'rtmpUrl') {
        throw new GatewayError(error.code, error.message.replace(/^rtmpUrl\b/, field), field, error.retryAfterS);
      }
      throw error;
    }
  }

  async #unpublish(name: string, id: string, reason: string, lost = false): Promise<void> {
    try {
      await this.plane.unpublish(name, id, reason, lost);
    } catch (error) {
      this.log.warn({ stream: name, reason: (error as Error).message }, 'ending an SDK publish failed');
    }
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
