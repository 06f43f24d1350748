import type { RTCPeerConnection } from 'werift';
import { loopbackPeer } from './werift-peer.js';
import { now } from './processes.js';

/**
 * A WHEP viewer without a browser: werift receiving a stream's H.264 and Opus, counting what
 * arrives (RTP packets per kind, and video keyframes: NAL type 5 or an FU-A start of one).
 */
export class WhepViewer {
  readonly received = { video: 0, audio: 0, keyframes: 0 };
  /** When the first packet of each video frame (by RTP timestamp) arrived, for the last 1000 frames. */
  readonly videoArrivals = new Map<number, number>();
  /** Where the WHEP session is (`Location`), to DELETE it. */
  location = '';
  /** The gateway's SDP answer. */
  answer = '';
  readonly #pc: RTCPeerConnection;
  #end: () => Promise<void> = async () => {};

  private constructor(localAddress: string) {
    this.#pc = loopbackPeer(localAddress, { video: 102, audio: 109 });
  }

  /** Posts the offer to `/whep/{name}` and connects; rejects with the gateway's answer when refused. */
  static async watch(
    baseUrl: string,
    name: string,
    options: { token?: string; localAddress?: string } = {},
  ): Promise<WhepViewer> {
    const viewer = new WhepViewer(options.localAddress ?? '127.0.0.1');
    try {
      await viewer.#connect(baseUrl, name, options.token);
    } catch (error) {
      await viewer.close();
      throw error;
    }
    return viewer;
  }

  async #connect(baseUrl: string, name: string, token?: string): Promise<void> {
    this.#end = async () => {
      if (!this.location) return;
      await fetch(baseUrl + this.location, {
        method: 'DELETE',
        headers: token ? { authorization: `Bearer ${token}` } : {},
      })
        .then((r) => r.body?.cancel())
        .catch(() => {});
    };
    const pc = this.#pc;
    for (const kind of ['video', 'audio'] as const) {
      const transceiver = pc.addTransceiver(kind, { direction: 'recvonly' });
      transceiver.onTrack.subscribe((track) => {
        track.onReceiveRtp.subscribe((rtp) => {
          this.received[kind]++;
          if (kind === 'video' && !this.videoArrivals.has(rtp.header.timestamp)) {
            this.videoArrivals.set(rtp.header.timestamp, now());
            if (this.videoArrivals.size > 1000) this.videoArrivals.delete(this.videoArrivals.keys().next().value!);
          }
          const nal = rtp.payload[0]! & 0x1f;
          if (kind === 'video' && (nal === 5 || (nal === 28 && (rtp.payload[1]! & 0x9f) === 0x85)))
            this.received.keyframes++;
        });
      });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.iceGatheringStateChange.subscribe((state) => state === 'complete' && resolve());
    });
    const response = await fetch(`${baseUrl}/whep/${encodeURIComponent(name)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: pc.localDescription!.sdp,
    });
    const body = await response.text();
    if (response.status !== 201) throw new Error(`WHEP answered ${response.status}: ${body}`);
    this.location = response.headers.get('location') ?? '';
    this.answer = body;
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('WHEP viewer: WebRTC did not connect in 20 s')), 20_000);
      pc.connectionStateChange.subscribe((state) => {
        if (state === 'connected') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    await connected;
  }

  get connectionState(): string {
    return this.#pc.connectionState;
  }

  /** Stops reading and answering at once, telling the gateway nothing: a viewer frozen or cut off. */
  async vanish(): Promise<void> {
    this.#end = async () => {};
    await this.#pc.close();
  }

  /** Ends the WHEP session (DELETE), then the connection. */
  async close(): Promise<void> {
    await this.#end();
    await this.#pc.close();
  }
}
