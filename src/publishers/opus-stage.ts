import { OpusDecoder } from 'opus-decoder';
import { interleave } from '../audio/pcm.js';
import type { AudioPacket } from '../media/sinks.js';

/**
 * A publisher's Opus decoded once for all its pushes that mix (a sound over it): each packet
 * is decoded the first time one of them asks, to interleaved stereo 16-bit PCM at 48 kHz, and kept
 * with the packet. Pushes that pass the Opus as it is (`OpusTimeline`) never ask, and the decoder (a
 * WebAssembly module) is made only at the first ask: a stream nobody mixes decodes nothing.
 * Opus decoding carries state from packet to packet, so packets are decoded in time order: one
 * captured before the last decoded is not decoded any more (its pushes take it as lost).
 */
export class OpusStage {
  #decoder: OpusDecoder | undefined;
  #ready = false;
  #closed = false;
  /** Capture time of the last packet decoded. */
  #lastDecodedMs = Number.NEGATIVE_INFINITY;
  readonly #decoded = new WeakMap<AudioPacket, Int16Array | null>();

  /** The packet's samples, decoded once; undefined when it cannot be (undecodable, out of order, decoder not ready yet). */
  pcm(packet: AudioPacket): Int16Array | undefined {
    const known = this.#decoded.get(packet);
    if (known !== undefined) return known ?? undefined;
    if (this.#closed) return undefined;
    const decoder = (this.#decoder ??= this.#make());
    if (!this.#ready || packet.captureMs <= this.#lastDecodedMs) return undefined;
    this.#lastDecodedMs = packet.captureMs;
    const { channelData, samplesDecoded } = decoder.decodeFrame(packet.payload);
    const pcm = samplesDecoded > 0 ? interleave(channelData, samplesDecoded) : null;
    this.#decoded.set(packet, pcm);
    return pcm ?? undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const decoder = this.#decoder;
    if (!decoder) return;
    // A decoder still compiling is freed once it is ready.
    if (this.#ready) decoder.free();
    else void decoder.ready.then(() => decoder.free());
  }

  #make(): OpusDecoder {
    const decoder = new OpusDecoder({ forceStereo: true });
    void decoder.ready.then(() => (this.#ready = !this.#closed));
    return decoder;
  }
}
