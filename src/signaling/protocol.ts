/**
 * The signalling protocol between the browser SDK and the gateway, over one WebSocket per SDK
 * session: JSON messages, each with a `type`. Shared by the server (`server.ts`, which validates
 * what clients send with `messages.ts`) and the SDK (`sdk/src/gateway.ts`). Types and constants
 * only, so the SDK bundles none of the server.
 */

export const PROTOCOL_VERSION = 1;
export const SIGNALING_PATH = '/ws';
/**
 * The close code of a session that published nothing within `signaling_idle_timeout_ms`: nothing
 * was lost, so the SDK connects again quietly (only a publisher keeps a session open for long).
 */
export const IDLE_CLOSE_CODE = 4408;

/** Most destinations one published stream may have from the SDK. */
export const MAX_DESTINATIONS = 8;

/** Where to republish a stream: one transponder, named by an id the client chooses. */
export interface DestinationRequest {
  /** Names the destination in every `destination` message (the URL holds a stream key: it is never sent back). */
  id: string;
  rtmpUrl: string;
  rtmpTransponderFullUrl?: boolean;
}

/**
 * Publish a stream: an SDP offer, and optionally where to republish it once publishing. A publish
 * of a name this session already publishes replaces that publish, as a publisher that came back:
 * its transponders go on with the new one (the SDK's recovery after its peer connection failed).
 */
export interface PublishMessage {
  type: 'publish';
  /** Chosen by the client; the answer and any error name it. */
  requestId: string;
  name: string;
  sdp: string;
  /** One destination, with id `rtmpUrl` (the form of the first protocol version). */
  rtmpUrl?: string;
  rtmpTransponderFullUrl?: boolean;
  destinations?: DestinationRequest[];
  /** A publish token (publish key or JWT) from the integrator's backend, when publishing needs one. */
  token?: string;
}

export interface UnpublishMessage {
  type: 'unpublish';
  name: string;
}

/** Adds a destination to a stream of this session, pushed at once when it is publishing. */
export interface AddDestinationMessage {
  type: 'addDestination';
  requestId: string;
  name: string;
  destination: DestinationRequest;
}

/** Ends the push to one destination of a stream; the stream and its other pushes go on. */
export interface RemoveDestinationMessage {
  type: 'removeDestination';
  name: string;
  id: string;
}

/** What the SDK sends. */
export type ClientMessage = PublishMessage | UnpublishMessage | AddDestinationMessage | RemoveDestinationMessage;

/** Sent once the connection is open. */
export interface HelloMessage {
  type: 'hello';
  version: number;
}

/** The gateway's SDP answer to a publish. */
export interface AnswerMessage {
  type: 'answer';
  requestId: string;
  sdp: string;
}

/** A published stream's status; `info` says why it ended. */
export interface StatusMessage {
  type: 'status';
  name: string;
  status: 'PUBLISHING' | 'UNPUBLISHED';
  info?: string;
  /**
   * UNPUBLISHED because the publisher was lost (its media stopped, its connection failed), not
   * ended on purpose: its pushes wait in standby, and publishing again takes them back.
   */
  lost?: boolean;
}

/**
 * What a destination shows: `starting` (connecting to the RTMP server), `live` (the server accepted
 * the stream and the publisher's media goes out), `reconnecting` (the output broke and is being
 * restored), `standby` (the publisher is away: the last picture and silence hold the broadcast),
 * `failed` (given up: `reason` says why), `stopped` (ended).
 */
export type DestinationState = 'starting' | 'live' | 'reconnecting' | 'standby' | 'failed' | 'stopped';

/** The republishing of a stream to one destination: its state, and why it reconnects or failed. */
export interface DestinationMessage {
  type: 'destination';
  name: string;
  /** The id the client gave the destination. */
  id: string;
  state: DestinationState;
  /** The destination with its stream key, password and query values masked. */
  url?: string;
  mediaSessionId?: string;
  /** Why it reconnects, waits or failed; never holds a secret. */
  reason?: string;
  /** Why it failed to start: an error code of the REST API (`destination_refused`, ...). */
  code?: string;
}

/** The answer to `addDestination`, once the destination is checked and taken. */
export interface DestinationAddedMessage {
  type: 'destinationAdded';
  requestId: string;
  name: string;
  id: string;
}

/** A refused message: the error code, what was wrong, and the field at fault. */
export interface ErrorMessage {
  type: 'error';
  requestId?: string;
  code: string;
  message: string;
  field?: string;
}

/** What the gateway sends. */
export type ServerMessage = HelloMessage | AnswerMessage | StatusMessage | DestinationMessage | DestinationAddedMessage | ErrorMessage;
