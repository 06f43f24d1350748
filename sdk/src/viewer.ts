/**
 * Watching a published stream over WHEP: what the gateway receives, as it arrives.
 *
 *   const viewer = await watch({ server: 'https://gateway.example.com', name: 'test', video: el, token });
 *   // …
 *   await viewer.stop();
 */

export interface WatchOptions {
  /** The gateway's HTTP(S) address; the page's own origin when left out. */
  server?: string;
  /** The stream's name. */
  name: string;
  /** Where the picture plays (muted, so that it may start by itself). */
  video: HTMLVideoElement;
  /** The control key, or a token with a view grant, when the gateway needs one. */
  token?: string;
}

export interface Viewer {
  /** The WebRTC connection, for its statistics (`getStats`). */
  readonly peerConnection: RTCPeerConnection;
  /** Ends the viewing (WHEP DELETE) and empties the player. */
  stop(): Promise<void>;
}

/** Waits for ICE gathering (the gateway takes no trickled candidates), 2 s at most. */
function gathered(pc: RTCPeerConnection): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 2000);
  });
}

/** Starts watching; rejects with the gateway's reason when it refuses (no such stream, no grant, a limit). */
export async function watch(options: WatchOptions): Promise<Viewer> {
  const server = (options.server ?? location.origin).replace(/\/$/, '');
  const auth: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const pc = new RTCPeerConnection();
  const media = new MediaStream();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addEventListener('track', (event) => media.addTrack(event.track));
  let resource: string | null = null;
  const stop = async (): Promise<void> => {
    pc.close();
    if (options.video.srcObject === media) options.video.srcObject = null;
    if (resource) await fetch(new URL(resource, server).href, { method: 'DELETE', headers: auth }).catch(() => {});
    resource = null;
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch(`${server}/whep/${encodeURIComponent(options.name)}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/sdp' },
      body: pc.localDescription!.sdp,
    });
    if (response.status !== 201) {
      const error = (await response.json().catch(() => ({}))) as { message?: string };
      throw new Error(error.message ?? `the gateway answered ${response.status}`);
    }
    resource = response.headers.get('location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  } catch (error) {
    await stop();
    throw error;
  }
  options.video.muted = true;
  options.video.srcObject = media;
  return { peerConnection: pc, stop };
}
