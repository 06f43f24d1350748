import type { FailureKind } from './failures.js';
import { LagGuard } from './lag-guard.js';
import type { DeliveryProbe, SendBufferState } from './link.js';
import { SendBuffer, type SendBufferSettings } from './send-buffer.js';
import type { TagSink } from '../media/sinks.js';

/** What a link's guard and buffer are set by. */
export interface GuardSettings {
  maxLagMs: number;
  sendBuffer: SendBufferSettings;
  onBufferState: (state: SendBufferState) => void;
}

/**
 * What every link has in front of its connection: a `LagGuard` over `sink` (measured by `probe`)
 * and, when enabled, the send buffer; and its loss, told once unless it was closed on purpose.
 */
export abstract class GuardedLink {
  protected readonly guard: LagGuard;
  protected readonly sendBuffer: SendBuffer | undefined;
  /** Where the push writes: the buffer, else the guard. */
  protected readonly front: TagSink;
  protected closed = false;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;

  constructor(sink: TagSink, probe: DeliveryProbe, settings: GuardSettings) {
    this.guard = new LagGuard(sink, probe, settings.maxLagMs);
    this.sendBuffer = settings.sendBuffer.enabled
      ? new SendBuffer(this.guard, settings.sendBuffer, undefined, settings.onBufferState)
      : undefined;
    this.front = this.sendBuffer ?? this.guard;
  }

  get lagMs(): number {
    return this.guard.lagMs;
  }

  get buffer(): { state: SendBufferState; levelMs: number } | undefined {
    return this.sendBuffer && { state: this.sendBuffer.state, levelMs: this.sendBuffer.levelMs };
  }

  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
  }

  /** Marks it closed and tells the loss, once; nothing when it was closed on purpose. */
  protected lose(reason: string, kind: FailureKind): void {
    if (this.closed) return;
    this.closed = true;
    this.sendBuffer?.close();
    const listener = this.#lost;
    this.#lost = undefined;
    listener?.(reason, kind);
  }
}
