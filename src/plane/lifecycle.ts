import type { PublisherRegistry } from '../publishers/registry.js';
import type { PushService } from '../pushes/service.js';
import type { PushState } from '../pushes/states.js';
import { followPushes } from '../pushes/changes.js';
import {
  MIXER_EVENTS,
  PUBLISHER_EVENTS,
  PUSH_HEALTH_EVENTS,
  RECORDING_EVENTS,
  UPLOAD_EVENTS,
  PUSH_EVENTS,
  VIEWER_EVENTS,
} from '../core/lifecycle-events.js';
import type { Health } from '../pushes/health.js';
import type { Push } from '../pushes/push.js';
import type { MixerEvent, MixerService } from '../mixers/service.js';
import type { ViewerEvents, ViewerRegistry } from '../viewers/viewers.js';
import type { RecordingEvent, RecordingPart } from '../links/record-link.js';

/** What an upload tells, as a webhook (`recording.uploaded`, `recording.upload_failed`). Holds no secret. */
export interface UploadEvent {
  type: (typeof UPLOAD_EVENTS)[number];
  file: string;
  stream: string;
  mediaSessionId: string;
  bucket: string;
  key: string;
  /** Bytes of the part. */
  size: number;
  /** From the attempt's start to the store's confirmation, or to its failure (ms). */
  tookMs: number;
  /** The attempt at this file, from 1. */
  attempt: number;
  /** Why it failed, and the setting to look at. */
  reason?: string;
  field?: string;
}

/** What happened to a stream or one of its pushes, as webhooks tell it. Holds no secret. */
export type LifecycleEvent =
  | { type: (typeof PUBLISHER_EVENTS)[number]; stream: string; publisherId: string; reason?: string }
  | {
      type: (typeof PUSH_EVENTS)[number];
      stream: string;
      mediaSessionId: string;
      /** The destination with its stream key, password and query values masked. */
      destination: string;
      state: PushState;
      reason?: string;
      /** `started`: from the startup request to the first video frame written to the destination. */
      startupMs?: number;
      /** `restored` after reconnecting: how long the output was down. */
      outageMs?: number;
    }
  | {
      type: (typeof PUSH_HEALTH_EVENTS)[number];
      stream: string;
      mediaSessionId: string;
      destination: string;
      /** What the platform's dashboard checks, measured on what was sent: its status and what is off. */
      health: Pick<Health, 'status' | 'issues'>;
    }
  | ({ type: (typeof RECORDING_EVENTS)[number] } & RecordingPart)
  | UploadEvent
  | { type: (typeof VIEWER_EVENTS)[number]; stream: string; viewerId: string; reason?: string }
  | ({ type: (typeof MIXER_EVENTS)[number] } & MixerEvent);

/** The event a push's new state makes, given the state it comes from. */
function pushEvent(previous: PushState | undefined, state: PushState): (typeof PUSH_EVENTS)[number] | undefined {
  switch (state) {
    case 'running':
      return previous === 'starting' || previous === undefined ? 'transponder.started' : 'transponder.restored';
    case 'reconnecting':
    case 'standby':
    case 'failed':
    case 'stopped':
      return `transponder.${state}`;
    default:
      return undefined; // starting, resuming, stopping: steps on the way to one of the above
  }
}

/**
 * The lifecycle events of one thread's publishers and pushes. A stream published while
 * pushes of it wait in standby has `returned`; a publisher that went away (connection gone,
 * page closed) is `lost`, one ended on purpose `ended`.
 */
export function followLifecycle(
  publishers: PublisherRegistry,
  pushes: PushService,
  viewers: ViewerRegistry,
  mixers: MixerService,
  listener: (event: LifecycleEvent) => void,
): () => void {
  const stopPushes = followPushes(pushes, (change) => {
    const type = pushEvent(change.previous, change.state);
    if (!type) return;
    const { previous: _previous, errorCode: _errorCode, ...told } = change; // the change holds only the fields it has
    listener({ type, ...told });
  });
  const onPublishing = (publisher: { name: string; id: string }): void => {
    // Told before the pushes resume: those waiting for this stream (in standby, or restoring their output meanwhile) still wait.
    const returned = pushes.awaiting(publisher.name).length > 0;
    const type = returned ? 'publisher.returned' : 'publisher.published';
    listener({ type, stream: publisher.name, publisherId: publisher.id });
  };
  const onClosed = (publisher: { name: string; id: string }, reason: string, lost: boolean): void => {
    listener({
      type: lost ? 'publisher.lost' : 'publisher.ended',
      stream: publisher.name,
      publisherId: publisher.id,
      reason,
    });
  };
  const onRecording = (event: RecordingEvent): void => listener({ type: `recording.${event.type}`, ...event.part });
  const onHealth = (push: Push, health: Health): void =>
    listener({
      type: 'transponder.health',
      stream: push.publisher.name,
      mediaSessionId: push.mediaSessionId,
      destination: push.destination.redactedUrl,
      health: { status: health.status, issues: health.issues },
    });
  const onJoined = (viewer: ViewerEvents['joined'][0]): void => listener({ type: 'viewer.joined', ...viewer });
  const onLeft = (viewer: ViewerEvents['left'][0]): void => listener({ type: 'viewer.left', ...viewer });
  const onMixer = (event: { type: (typeof MIXER_EVENTS)[number] } & MixerEvent): void => listener(event);
  viewers.on('joined', onJoined);
  viewers.on('left', onLeft);
  mixers.on('event', onMixer);
  // Told before the pushes hear of it: `lost` comes before their standby, `returned` before their restore.
  publishers.prependListener('publishing', onPublishing);
  publishers.prependListener('closed', onClosed);
  pushes.on('recording', onRecording);
  pushes.on('health', onHealth);
  return () => {
    stopPushes();
    pushes.off('recording', onRecording);
    pushes.off('health', onHealth);
    viewers.off('joined', onJoined);
    viewers.off('left', onLeft);
    mixers.off('event', onMixer);
    publishers.off('publishing', onPublishing);
    publishers.off('closed', onClosed);
  };
}
