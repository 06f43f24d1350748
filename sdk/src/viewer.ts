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
  /** The stream's captions as a text track of `video` (a data channel from the gateway); true by default. */
  captions?: boolean;
}

export interface Viewer {
  /** The WebRTC connection, for its statistics (`getStats`). */
  readonly peerConnection: RTCPeerConnection;
  /** The stream's captions, a text track of the player (kind `captions`, showing), unless turned off. */
  readonly captions: TextTrack | undefined;
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
  const captions = options.captions === false ? undefined : showCaptions(options.video, pc);
  pc.addEventListener('track', (event) => media.addTrack(event.track));
  let resource: string | null = null;
  const stop = async (): Promise<void> => {
    pc.close();
    if (options.video.srcObject === media) options.video.srcObject = null;
    for (const cue of [...(captions?.cues ?? [])]) captions?.removeCue(cue);
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
  return { peerConnection: pc, captions, stop };
}

/** How long a caption shows with nothing after it (s), as the pushed video's captions. */
const CAPTION_SHOWN_S = 10;

/**
 * The gateway's captions channel (negotiated, id 0, as the gateway's engine opens it) shown as cues
 * of a text track of `video`: each caption from when it comes until the next one, 10 s at most;
 * interim text replaced by what follows it. The track is the video's own, reused by the next viewing.
 */
function showCaptions(video: HTMLVideoElement, pc: RTCPeerConnection): TextTrack {
  const track = [...video.textTracks].find((t) => t.label === 'Captions') ?? video.addTextTrack('captions', 'Captions');
  track.mode = 'showing';
  let last: VTTCue | undefined;
  let lastFinal = true;
  const channel = pc.createDataChannel('captions', { negotiated: true, id: 0 });
  channel.onmessage = (event: MessageEvent) => {
    let caption: { text?: unknown; final?: unknown };
    try {
      caption = JSON.parse(String(event.data)) as typeof caption;
    } catch {
      return;
    }
    if (typeof caption.text !== 'string') return;
    const now = video.currentTime;
    if (last && !lastFinal) track.removeCue(last);
    else if (last && last.endTime > now) last.endTime = now;
    last = new VTTCue(now, now + CAPTION_SHOWN_S, caption.text);
    lastFinal = caption.final !== false;
    track.addCue(last);
  };
  return track;
}
