/**
 * The signalling protocol between the browser SDK and the gateway, over one WebSocket per SDK
 * session: JSON messages, each with a `type`. Shared by the server (`server.ts`, which validates
 * what clients send with `messages.ts`, where those messages are defined) and the SDK
 * (`sdk/src/gateway.ts`). Types and constants only, so the SDK bundles none of the server.
 */

import type { z } from 'zod';
import type { ErrorCode } from '../core/errors.js';
import type { CheckReport } from '../links/check-report.js';
import type { MixerInfo } from '../mixers/requests.js';
import type {
  addDestinationMessageSchema,
  checkDestinationMessageSchema,
  clientMessageSchema,
  destinationRequestSchema,
  joinMixerMessageSchema,
  publishMessageSchema,
  startMixerMessageSchema,
} from './messages.js';

export const PROTOCOL_VERSION = 1;
export const SIGNALING_PATH = '/ws';
/**
 * The close code of a session that published nothing within `signaling_idle_timeout_ms`: nothing
 * was lost, so the SDK connects again quietly (only a publisher keeps a session open for long).
 */
export const IDLE_CLOSE_CODE = 4408;
/**
 * The close code of a session whose node is draining (a cluster's rolling deploy): the SDK connects
 * again at once, through the load balancer to another node, and publishes its streams there.
 */
export const MOVE_CLOSE_CODE = 4503;

/** What the SDK sends: the types of the schemas in `messages.ts`, which check every message. */
export type DestinationRequest = z.infer<typeof destinationRequestSchema>;
export type PublishMessage = z.infer<typeof publishMessageSchema>;
export type AddDestinationMessage = z.infer<typeof addDestinationMessageSchema>;
export type CheckDestinationMessage = z.infer<typeof checkDestinationMessageSchema>;
export type StartMixerMessage = z.input<typeof startMixerMessageSchema>;
export type JoinMixerMessage = z.infer<typeof joinMixerMessageSchema>;
export type ClientMessage = z.infer<typeof clientMessageSchema>;
export type { CheckReport, MixerInfo };

/** Sent once the connection is open. */
interface HelloMessage {
  type: 'hello';
  version: number;
  /** Whether a publish may carry a `captions` data channel (negotiated, id 0): the gateway's engine takes it. */
  captionsChannel?: boolean;
  /** The video codecs a publish may use, the gateway's most preferred first (an SDK asks for AV1 only when it is here). */
  videoCodecs?: string[];
}

/** The gateway's SDP answer to a publish. */
interface AnswerMessage {
  type: 'answer';
  requestId: string;
  sdp: string;
}

/** A published stream's status; `info` says why it ended. */
interface StatusMessage {
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
  code?: ErrorCode;
}

/** The answer to `addDestination`, once the destination is checked and taken. */
interface DestinationAddedMessage {
  type: 'destinationAdded';
  requestId: string;
  name: string;
  id: string;
}

/** The answer to `checkDestination`: how far a connection to the destination got, no media sent. */
interface DestinationCheckedMessage {
  type: 'destinationChecked';
  requestId: string;
  report: CheckReport;
}

/** The answer to `startMixer`, `joinMixer` and `leaveMixer`: the mixer as it is now, with its inputs. */
interface MixerMessage {
  type: 'mixer';
  requestId: string;
  mixer: MixerInfo;
}

/** The answer to `caption`: how many of the stream's pushes carry it, and the stream's media time it was placed at. */
interface CaptionedMessage {
  type: 'captioned';
  requestId: string;
  pushes: number;
  at: number;
}

/** A refused message: the error code, what was wrong, and the field at fault. */
interface ErrorMessage {
  type: 'error';
  requestId?: string;
  code: ErrorCode;
  message: string;
  field?: string;
}

/** What the gateway sends. */
export type ServerMessage =
  | HelloMessage
  | AnswerMessage
  | StatusMessage
  | DestinationMessage
  | DestinationAddedMessage
  | DestinationCheckedMessage
  | MixerMessage
  | CaptionedMessage
  | ErrorMessage;
