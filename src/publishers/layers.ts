import { TypedEmitter, type ListenerErrorHandler } from '../core/events.js';
import type { IngestSession, IngestSessionEvents, IngestTrack, LayerTrack } from '../ingest/engine.js';
import type { VideoCodec } from '../media/codecs.js';

/**
 * The session of one simulcast layer of a stream: that layer's video track (a consumer of its own
 * in the engine) beside the stream's audio, on the stream's connection, connected from the start.
 * Closing it ends the layer's track, never the stream.
 */
export class LayerSession extends TypedEmitter<IngestSessionEvents> implements IngestSession {
  readonly answer = '';
  readonly id: string;
  readonly tracks: readonly IngestTrack[];
  readonly videoCodec: VideoCodec | undefined;
  readonly hasAudio: boolean;
  #closed = false;

  constructor(
    stream: IngestSession,
    private readonly video: LayerTrack,
    spatial: number,
    onListenerError?: ListenerErrorHandler,
  ) {
    super(onListenerError);
    this.id = `${stream.id}/layer-${spatial}`;
    this.tracks = [video, ...stream.tracks.filter((track) => track.kind === 'audio')];
    this.videoCodec = stream.videoCodec;
    this.hasAudio = stream.hasAudio;
  }

  /** The stream is connected already: so is its layer, once its publisher listens. */
  connect(): void {
    this.safeEmit('connected');
  }

  async close(reason = 'closed by the gateway'): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.video.close();
    this.safeEmit('closed', reason);
    this.removeAllListeners();
  }
}
