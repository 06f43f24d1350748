import type { FailureKind } from './failures.js';
import { LagGuard } from './lag-guard.js';
import type { DeliveryProbe, MediaOutput, OutBufferState } from './link.js';
import { OutputBuffer, type OutBufferSettings } from './out-buffer.js';

/** What a link's guard and buffer are set by. */
export interface GuardSettings {
  maxLagMs: number;
  outBuffer: OutBufferSettings;
  onBufferState: (state: OutBufferState) => void;
}

/**
 * What every link has in front of its connection: a `LagGuard` over `sink` (measured by `probe`)
 * and, when enabled, the output buffer; and its loss, told once unless it was closed on purpose.
 */
export abstract class GuardedLink {
  protected readonly guard: LagGuard;
  protected readonly outBuffer: OutputBuffer | undefined;
  /** Where the push writes: the buffer, else the guard. */
  protected readonly front: MediaOutput;
  protected closed = false;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;

  constructor(sink: MediaOutput, probe: DeliveryProbe, settings: GuardSettings) {
    this.guard = new LagGuard(sink, probe, settings.maxLagMs);
    this.outBuffer = settings.outBuffer.enabled
      ? new OutputBuffer(this.guard, settings.outBuffer, undefined, settings.onBufferState)
      : undefined;
    this.front = this.outBuffer ?? this.guard;
  }

  get lagMs(): number {
    return this.guard.lagMs;
  }

  get buffer(): { state: OutBufferState; levelMs: number } | undefined {
    return this.outBuffer && { state: this.outBuffer.state, levelMs: this.outBuffer.levelMs };
  }

  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
  }

  /** Marks it closed and tells the loss, once; nothing when it was closed on purpose. */
  protected lose(reason: string, kind: FailureKind): void {
    if (this.closed) return;
    this.closed = true;
    this.outBuffer?.close();
    const listener = this.#lost;
    this.#lost = undefined;
    listener?.(reason, kind);
  }
}
