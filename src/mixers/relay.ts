import type { MessagePort } from 'node:worker_threads';
import type { VideoCodec } from '../media/codecs.js';
import type { Publisher } from '../publishers/publisher.js';
import type { AudioPacket, MediaSink, VideoFrame } from '../media/sinks.js';

/** Where a mixer input's media comes from: its publisher, or a relay of a publisher in another worker thread. */
export interface InputSource {
  /** See `Publisher.attach`: with `fromKeyframe`, the cached keyframe and what followed it first. */
  attach(sink: MediaSink, fromKeyframe: boolean): boolean;
  detach(sink: MediaSink): void;
  /** An audio packet's samples, decoded once for every output. */
  audioPcm(packet: AudioPacket): Int16Array | undefined;
  /** A source of the input's own (a relay) ends when the input leaves it; a publisher has none (it goes on for its other sinks). */
  release?(): void;
}

/** What crosses between the threads: frames as their decoders read them, and sound already decoded. */
type RelayMessage =
  | { t: 'frame'; codec: VideoCodec; key: boolean; captureMs: number; timestamp: number; data: Uint8Array }
  | { t: 'audio'; captureMs: number; pcm: Int16Array }
  | { t: 'closed' };

/**
 * Sends `publisher`'s media to a mixer in another worker thread over `port`: each frame's
 * bitstream and each audio packet's samples (decoded once here, for every output), from the
 * cached keyframe on, each time the mixer asks (its first decoder, and one of a new size, need one).
 * Ends when the publisher ends (telling the mixer) or the mixer closes the port.
 */
export function relayStream(publisher: Publisher, port: MessagePort): void {
  const post = (message: RelayMessage): void => port.postMessage(message);
  const sink: MediaSink = {
    frame: (frame) => {
      // A bitstream may be a view of a larger pool (Node's Buffers of under 4 KB are): structured
      // clone would copy the whole pool behind it. Its own bytes are copied once and handed over.
      const bitstream = frame.bitstream();
      const data = new Uint8Array(bitstream.byteLength);
      data.set(bitstream);
      port.postMessage(
        {
          t: 'frame',
          codec: frame.codec,
          key: frame.key,
          captureMs: frame.captureMs,
          timestamp: frame.timestamp,
          data,
        } satisfies RelayMessage,
        [data.buffer],
      );
    },
    audio: (packet) => {
      const pcm = publisher.audioPcm(packet);
      if (pcm) post({ t: 'audio', captureMs: packet.captureMs, pcm });
    },
  };
  const ended = (): void => {
    post({ t: 'closed' });
    port.close();
  };
  publisher.once('closed', ended);
  port.on('message', (message: { t?: string }) => {
    if (message?.t !== 'replay') return;
    publisher.detach(sink);
    publisher.attach(sink, true);
  });
  port.on('close', () => {
    publisher.detach(sink);
    publisher.off('closed', ended);
  });
}

/** An audio packet that came over a relay, its samples with it. */
interface RelayedAudio extends AudioPacket {
  pcm: Int16Array;
}

/** The mixer's side of `relayStream`: a source of the frames and sound that come over `port`. */
export class RelayedSource implements InputSource {
  #sink: MediaSink | undefined;

  constructor(
    private readonly port: MessagePort,
    /** The publisher at the other end ended. */
    onClosed: () => void,
  ) {
    port.on('message', (message: RelayMessage) => {
      const sink = this.#sink;
      if (message.t === 'closed') return onClosed();
      if (!sink) return;
      if (message.t === 'audio') {
        const packet: RelayedAudio = { payload: EMPTY, captureMs: message.captureMs, pcm: message.pcm };
        return sink.audio(packet);
      }
      const data = Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength);
      const frame: VideoFrame = {
        codec: message.codec,
        key: message.key,
        captureMs: message.captureMs,
        timestamp: message.timestamp,
        packets: 0,
        bytes: data.length,
        bitstream: () => data,
      };
      sink.frame(frame);
    });
  }

  attach(sink: MediaSink, fromKeyframe: boolean): boolean {
    this.#sink = sink;
    if (fromKeyframe) this.port.postMessage({ t: 'replay' });
    return fromKeyframe;
  }

  detach(sink: MediaSink): void {
    if (this.#sink === sink) this.#sink = undefined;
  }

  audioPcm(packet: AudioPacket): Int16Array | undefined {
    return (packet as RelayedAudio).pcm;
  }

  release(): void {
    this.#sink = undefined;
    this.port.close();
  }
}

const EMPTY = Buffer.alloc(0);
