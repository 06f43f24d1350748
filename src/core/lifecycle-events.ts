/**
 * The names of the lifecycle events webhooks tell of: what configuration filters on and what the
 * plane emits.
 */
export const PUBLISHER_EVENTS = [
  'publisher.published',
  'publisher.lost',
  'publisher.returned',
  'publisher.ended',
] as const;
export const PUSH_EVENTS = [
  'transponder.started',
  'transponder.reconnecting',
  'transponder.restored',
  'transponder.standby',
  'transponder.failed',
  'transponder.stopped',
] as const;
/** A push's ingest health (what the platform's dashboard checks) changed status. */
export const PUSH_HEALTH_EVENTS = ['transponder.health'] as const;
/** A part (file) of a `record://` push began, or was finished. */
export const RECORDING_EVENTS = ['recording.started', 'recording.finished'] as const;
/** A finished part reached the bucket (`record_s3`), confirmed by it; or an attempt at it failed (it is tried again). */
export const UPLOAD_EVENTS = ['recording.uploaded', 'recording.upload_failed'] as const;
/** A WHEP viewer's session began, or ended (however: it left, its connection failed or never came, the stream ended). */
export const VIEWER_EVENTS = ['viewer.joined', 'viewer.left'] as const;
/** A mixer started or ended; a stream became one of its inputs, or stopped being one. */
export const MIXER_EVENTS = ['mixer.started', 'mixer.ended', 'mixer.input_added', 'mixer.input_removed'] as const;
export const LIFECYCLE_EVENTS = [
  ...PUBLISHER_EVENTS,
  ...PUSH_EVENTS,
  ...PUSH_HEALTH_EVENTS,
  ...RECORDING_EVENTS,
  ...UPLOAD_EVENTS,
  ...VIEWER_EVENTS,
  ...MIXER_EVENTS,
] as const;
export type LifecycleEventType = (typeof LIFECYCLE_EVENTS)[number];
