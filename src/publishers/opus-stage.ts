import { OpusDecoder } from 'opus-decoder';
import type { CachedPacket } from './start-cache.js';
import { interleave } from '../audio/pcm.js';

/**
 * A publisher's Opus decoded once for all its transponders: each packet is decoded the first time
 * one of them asks, to interleaved stereo 16-bit PCM at 48 kHz, and kept with the packet. Opus
 * decoding carries state from packet to packet, so packets are decoded in time order: one captured
 * before the last decoded is not decoded any more (its transponders take it as lost). Nothing is
 * decoded for a stream no transponder takes.
 */
export class OpusStage {
  readonly #decoder = new OpusDecoder({ forceStereo: true });
  #ready = false;
  #closed = false;
  /** Capture time of the last packet decoded. */
  #lastDecodedMs = Number.NEGATIVE_INFINITY;
  readonly #decoded = new WeakMap<CachedPacket, Int16Array | null>();

  constructor() {
    void this.#decoder.ready.then(() => (this.#ready = !this.#closed));
  }

  /** The packet's samples, decoded once; undefined when it cannot be (undecodable, out of order, decoder not ready). */
  pcm(packet: CachedPacket): Int16Array | undefined {
    const known = this.#decoded.get(packet);
    if (known !== undefined) return known ?? undefined;
    if (!this.#ready || this.#closed || packet.wallclockMs <= this.#lastDecodedMs) return undefined;
    this.#lastDecodedMs = packet.wallclockMs;
    const { channelData, samplesDecoded } = this.#decoder.decodeFrame(packet.payload);
    const pcm = samplesDecoded > 0 ? interleave(channelData, samplesDecoded) : null;
    this.#decoded.set(packet, pcm);
    return pcm ?? undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A decoder still compiling is freed once it is ready.
    if (this.#ready) this.#decoder.free();
    else void this.#decoder.ready.then(() => this.#decoder.free());
  }
}
