import type { types } from 'mediasoup';
import { TypedEmitter, type ListenerErrorHandler } from '../../core/events.js';
import type { ViewSession, ViewSessionEvents } from '../engine.js';
import { watchConnection } from './session.js';

export interface MediasoupViewerOptions {
  connectTimeoutMs?: number;
  /** Whether the viewer's address (the ICE tuple mediasoup chose) may be talked to. */
  remoteAllowed: (address: string) => boolean;
  onListenerError?: ListenerErrorHandler;
}

/**
 * One viewer on a mediasoup WebRtcTransport, its consumers taking the publisher's producers. The
 * consumers start paused and are resumed once the viewer is connected, so that the first picture
 * it gets is a keyframe (mediasoup asks the publisher for one on resume). mediasoup paces each
 * consumer on its own: a viewer that cannot keep up loses packets, the publisher and the other
 * consumers (pushes, recordings, viewers) do not wait for it. Closed with its connection, or when
 * the publisher's tracks end.
 */
export class MediasoupViewer extends TypedEmitter<ViewSessionEvents> implements ViewSession {
  answer = '';
  readonly #consumers: types.Consumer[] = [];
  /** Its data channels, by label: what the gateway sends on them comes from the router's side. */
  readonly #channels = new Map<string, types.DataProducer>();
  readonly #connectTimer: NodeJS.Timeout | undefined;
  #connected = false;
  #closed = false;

  constructor(
    private readonly transport: types.WebRtcTransport,
    options: MediasoupViewerOptions,
  ) {
    super(options.onListenerError);
    this.#connectTimer = watchConnection(
      transport,
      options,
      'viewer',
      () => {
        this.#connected = true;
        for (const consumer of this.#consumers) consumer.resume().catch(() => {}); // closed meanwhile
        this.safeEmit('connected');
      },
      (reason) => void this.close(reason),
    );
  }

  get id(): string {
    return this.transport.id;
  }

  add(consumer: types.Consumer): void {
    this.#consumers.push(consumer);
    consumer.on('producerclose', () => void this.close('the stream ended'));
    if (this.#connected) consumer.resume().catch(() => {});
  }

  /** A data channel to the viewer: messages sent through `producer` (on the router's side) reach it. */
  addChannel(label: string, producer: types.DataProducer): void {
    this.#channels.set(label, producer);
  }

  send(channel: string, text: string): void {
    const producer = this.#channels.get(channel);
    if (!this.#connected || !producer || producer.closed) return;
    try {
      producer.send(text);
    } catch {
      // Closed meanwhile: the viewer is going.
    }
  }

  async close(reason = 'closed by the gateway'): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#connectTimer);
    for (const producer of this.#channels.values()) if (!producer.closed) producer.close();
    // Closing the transport closes its consumers.
    if (!this.transport.closed) this.transport.close();
    this.safeEmit('closed', reason);
    this.removeAllListeners();
  }
}
