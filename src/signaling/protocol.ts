/**
 * The signalling protocol between the browser SDK and the gateway, over one WebSocket per SDK
 * session: JSON messages, each with a `type`. Shared by the server (`server.ts`, which validates
 * what clients send with `messages.ts`) and the SDK (`sdk/src/gateway.ts`). Types and constants
 * only, so the SDK bundles none of the server.
 */

export const PROTOCOL_VERSION = 1;
export const SIGNALING_PATH = '/ws';

/** Publish a stream: an SDP offer, and optionally where to republish it once publishing. */
export interface PublishMessage {
  type: 'publish';
  /** Chosen by the client; the answer and any error name it. */
  requestId: string;
  name: string;
  sdp: string;
  rtmpUrl?: string;
  rtmpTransponderFullUrl?: boolean;
  /** A publish token (publish key or JWT) from the integrator's backend, when publishing needs one. */
  token?: string;
}

export interface UnpublishMessage {
  type: 'unpublish';
  name: string;
}

/** What the SDK sends. */
export type ClientMessage = PublishMessage | UnpublishMessage;

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
}

/** The republishing of a stream to its `rtmpUrl`: its state, and why it reconnects or failed. */
export interface TransponderMessage {
  type: 'transponder';
  name: string;
  mediaSessionId?: string;
  state: string;
  /** Why it failed to start: an error code of the REST API (`destination_refused`, ...). */
  code?: string;
  error?: string;
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
export type ServerMessage = HelloMessage | AnswerMessage | StatusMessage | TransponderMessage | ErrorMessage;
