import type { Logger } from 'pino';
import { GatewayError, type ErrorCode } from '../core/errors.js';
import type { MediaPlane } from '../plane/plane.js';
import { shownReason, type PushChange } from '../pushes/changes.js';
import type { PushInfo } from '../pushes/info.js';
import type { Destination } from '../links/destination.js';
import { isActive, type PushState } from '../pushes/states.js';
import type { DestinationMessage, DestinationRequest, DestinationState } from './protocol.js';

/** What the SDK shows of a push's state: `live` only once the server took the publisher's media. */
export function destinationState(state: PushState): DestinationState {
  switch (state) {
    case 'starting':
      return 'starting';
    case 'running':
      return 'live';
    case 'standby':
    case 'resuming': // the still picture goes on until the returned publisher's video is ready
      return 'standby';
    case 'reconnecting':
      return 'reconnecting';
    case 'failed':
      return 'failed';
    case 'stopping':
    case 'stopped':
      return 'stopped';
  }
}

interface StreamPush {
  request: DestinationRequest;
  destination: Destination;
  mediaSessionId?: string;
  /** The state last told to the client. */
  told?: DestinationState;
}

/**
 * The destinations of one stream published from the SDK, each pushed by one push once the
 * stream is publishing, and each followed for the client: every state change goes out as a
 * `destination` message naming the client's id and the masked URL, never the URL itself.
 * A push that waits in standby for this stream (the page came back) is taken over, not
 * started twice.
 */
export class StreamPushes {
  readonly #pushes = new Map<string, StreamPush>();
  #publishing = false;
  #closed = false;

  constructor(
    readonly name: string,
    private readonly plane: MediaPlane,
    private readonly send: (message: DestinationMessage) => void,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.#pushes.size;
  }

  /** Throws 409 naming `destination.id` when `id` is already a destination of this stream. */
  checkNewId(id: string): void {
    if (this.#pushes.has(id))
      throw new GatewayError(
        'conflict',
        `destination.id: ${id} is already a destination of ${this.name}`,
        'destination.id',
      );
  }

  /** A checked destination: pushed at once when the stream is publishing, else once it is. */
  add(request: DestinationRequest, destination: Destination): void {
    this.checkNewId(request.id);
    const push: StreamPush = { request, destination };
    this.#pushes.set(request.id, push);
    if (this.#publishing) void this.#start(push);
  }

  /** Ends the push to one destination; the stream and its other pushes go on. */
  async remove(id: string): Promise<void> {
    const push = this.#pushes.get(id);
    if (!push) throw new GatewayError('not_found', `id: ${this.name} has no destination ${id}`, 'id');
    this.#pushes.delete(id);
    if (push.mediaSessionId !== undefined) {
      await this.plane.terminate(push.mediaSessionId).catch((error: unknown) => {
        if (!(error instanceof GatewayError && error.code === 'not_found')) throw error;
      });
    }
    this.#tell(push, 'stopped');
  }

  /** The stream is publishing: every destination is pushed. */
  publishing(): void {
    this.#publishing = true;
    for (const push of this.#pushes.values()) if (push.mediaSessionId === undefined) void this.#start(push);
  }

  /** The stream ended or was replaced: later changes are no longer told. */
  close(): void {
    this.#closed = true;
    this.#publishing = false;
  }

  /** A push changed state somewhere in the plane: told when it is one of these pushes. */
  onChange(change: PushChange): void {
    for (const push of this.#pushes.values()) {
      if (push.mediaSessionId === change.mediaSessionId)
        this.#tell(push, destinationState(change.state), change.reason);
    }
  }

  async #start(push: StreamPush): Promise<void> {
    const { id: _id, ...asked } = push.request;
    const { rtmpUrl } = asked;
    this.#tell(push, 'starting');
    let started: PushInfo;
    let resumed: PushInfo | undefined;
    try {
      // A push that waited in standby for this stream (the page came back) takes it back.
      resumed = (await this.plane.find({ streamName: this.name, rtmpUrl })).find((t) => isActive(t.state));
      if (resumed) push.mediaSessionId = resumed.mediaSessionId;
      started = resumed ?? (await this.plane.startup({ streamName: this.name, ...asked }));
    } catch (error) {
      const reason = error instanceof GatewayError ? error.message : 'the push failed to start';
      const code = error instanceof GatewayError ? error.code : 'internal';
      this.log.warn(
        { stream: this.name, destination: push.destination.redactedUrl, code, reason },
        'republishing from the SDK failed',
      );
      if (this.#pushes.get(push.request.id) === push) this.#tell(push, 'failed', reason, code);
      return;
    }
    if (this.#pushes.get(push.request.id) !== push) {
      // Removed while it started: the push it started is not wanted.
      if (!resumed) await this.plane.terminate(started.mediaSessionId).catch(() => {});
      return;
    }
    push.mediaSessionId = started.mediaSessionId;
    // Changes made before the id was known are read back once.
    const now =
      (await this.plane.find({ streamName: this.name, rtmpUrl }).catch(() => [])).find(
        (t) => t.mediaSessionId === started.mediaSessionId,
      ) ?? started;
    this.#tell(push, destinationState(now.state), shownReason(now.state, now.lastError));
  }

  #tell(push: StreamPush, state: DestinationState, reason?: string, code?: ErrorCode): void {
    if (this.#closed || push.told === state) return;
    push.told = state;
    this.send({
      type: 'destination',
      name: this.name,
      id: push.request.id,
      state,
      url: push.destination.redactedUrl,
      ...(push.mediaSessionId !== undefined ? { mediaSessionId: push.mediaSessionId } : {}),
      ...(reason && state !== 'live' && state !== 'starting' ? { reason } : {}),
      ...(code ? { code } : {}),
    });
  }
}
