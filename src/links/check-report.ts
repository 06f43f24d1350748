/**
 * What a destination check tells (`/rest-api/push/check`, the SDK's `checkDestination`): types
 * only, so the SDK can name them without bundling the server. `check.ts` checks its answers
 * against this shape.
 */
export interface CheckReport {
  /** Every step asked for succeeded. */
  ok: boolean;
  /** The destination, its secrets shown as `***`. */
  rtmpUrl: string;
  /** A connection was made and the server answered the handshake. */
  reachable: boolean;
  /** RTMP: `connect` accepted; SRT: the session accepted; null when not reached. */
  applicationAccepted: boolean | null;
  /** RTMP with `publish`: the stream key accepted; SRT: the stream id and passphrase accepted; null when not asked or not reached. */
  keyAccepted: boolean | null;
  elapsedMs: number;
  /** As a push would fail. */
  error?: 'destination_refused' | 'destination_unreachable' | 'internal';
  message?: string;
}
