import type { ClientMessage, ServerMessage, StartMixerMessage } from '../../src/signaling/protocol.js';
import type { ReconnectPolicy } from './backoff.js';

/** What a stream needs of its session: the connection, the token and the reconnect policy. */
export interface StreamHost {
  readonly token: string | undefined;
  /** Undefined when reconnecting is off. */
  readonly policy: ReconnectPolicy | undefined;
  /** The gateway can be sent messages now. */
  connected(): boolean;
  /** Whether the gateway takes a publish's `captions` data channel (its hello said so). */
  captionsChannel(): boolean;
  /** The video codecs the gateway takes (its hello said so). */
  videoCodecs(): readonly string[];
  /** Sends a message; a request's answer (or error) goes to `replyTo`, about `destination` when given. */
  send(message: ClientMessage | StartMixerMessage, replyTo?: StreamLink, destination?: string): void;
  /** Sends a request and resolves with its answer; rejects with the gateway's error. */
  call(message: ClientMessage): Promise<ServerMessage>;
  /** The stream takes part in the session (hears of its connection) from now, or no longer. */
  track(link: StreamLink, tracked: boolean): void;
}

/** What a session needs of a stream: its name, and where to tell it of the connection and the gateway's messages. */
export interface StreamLink {
  readonly name: string;
  /** The connection to the gateway dropped: publish again after `delayMs` (attempt `attempt`). */
  connectionLost(info: string, attempt: number, delayMs: number): void;
  /** Ended: the session disconnected or gave up. */
  closed(info: string): void;
  /** The connection is back: publish again. */
  republish(): void;
  /** The answer to this stream's publish, or to adding its destination `destination`. */
  reply(message: ServerMessage, destination?: string): void;
  /** A message about this stream by its name (its status, a destination's state). */
  message(message: ServerMessage): void;
}
