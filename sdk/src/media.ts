/** The browser-side media steps of a publish: codec preference, steady resolution, preview. */

/** Orders H.264 packetization-mode=1 constrained baseline first, then other H.264, then the rest. */
export function preferH264(transceiver: RTCRtpTransceiver): void {
  const capabilities = RTCRtpSender.getCapabilities?.('video');
  if (!capabilities || typeof transceiver.setCodecPreferences !== 'function') return;
  const rank = (codec: RTCRtpCodec): number => {
    const fmtp = codec.sdpFmtpLine ?? '';
    if (codec.mimeType.toLowerCase() !== 'video/h264') return /rtx|red|ulpfec/i.test(codec.mimeType) ? 9 : 5;
    if (!fmtp.includes('packetization-mode=1')) return 4;
    if (fmtp.includes('profile-level-id=42e01f')) return 0;
    return fmtp.includes('profile-level-id=42') ? 1 : 2;
  };
  const sorted = [...capabilities.codecs].sort((a, b) => rank(a) - rank(b));
  try {
    transceiver.setCodecPreferences(sorted);
  } catch {
    // Older browsers: the gateway still picks H.264 from the offer.
  }
}

/**
 * Offers AV1 alone (with its retransmission and redundancy) when the browser encodes it: true then.
 * False leaves the offer as it was, for `preferH264`.
 */
export function preferAv1(transceiver: RTCRtpTransceiver): boolean {
  const capabilities = RTCRtpSender.getCapabilities?.('video');
  if (!capabilities || typeof transceiver.setCodecPreferences !== 'function') return false;
  const av1 = capabilities.codecs.filter((c) => c.mimeType.toLowerCase() === 'video/av1');
  if (!av1.length) return false;
  const repair = capabilities.codecs.filter((c) => /rtx|red|ulpfec/i.test(c.mimeType));
  try {
    transceiver.setCodecPreferences([...av1, ...repair]);
    return true;
  } catch {
    return false;
  }
}

/** The simulcast layers the SDK publishes, lowest first (as the gateway takes them): a quarter, half and all of the camera's size. */
export const SIMULCAST_ENCODINGS: RTCRtpEncodingParameters[] = [
  { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 200_000 },
  { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 700_000 },
  { rid: 'h', maxBitrate: 2_500_000 },
];

/** Platforms dislike mid-stream resolution changes: lower the frame rate instead under load. */
export async function keepResolution(pc: RTCPeerConnection): Promise<void> {
  for (const sender of pc.getSenders()) {
    if (sender.track?.kind !== 'video') continue;
    const parameters = sender.getParameters() as RTCRtpSendParameters & { degradationPreference?: string };
    parameters.degradationPreference = 'maintain-resolution';
    await sender.setParameters(parameters).catch(() => {});
  }
}

/** Shows `media` in `display` (a <video>, or an element a <video> is created in). */
export function showPreview(display: HTMLElement, media: MediaStream): void {
  let video = display instanceof HTMLVideoElement ? display : display.querySelector('video');
  if (!video) {
    video = document.createElement('video');
    video.style.width = '100%';
    display.appendChild(video);
  }
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.srcObject = media;
}

/** What the publishing connection sends, from two `getStats()` reports a moment apart (`SendStats`). */
export function sendStats(
  before: RTCStatsReport | undefined,
  after: RTCStatsReport,
): { bitrateKbps: number; frameRate: number; width: number; height: number } {
  const totals = (
    report: RTCStatsReport | undefined,
  ): { bytes: number; at: number; video?: RTCOutboundRtpStreamStats } => {
    let bytes = 0;
    let at = 0;
    let video: RTCOutboundRtpStreamStats | undefined;
    report?.forEach((s: RTCStats) => {
      if (s.type !== 'outbound-rtp') return;
      const sent = s as RTCOutboundRtpStreamStats;
      bytes += sent.bytesSent ?? 0;
      at = sent.timestamp;
      if (sent.kind === 'video') video = sent;
    });
    return { bytes, at, video };
  };
  const a = totals(before);
  const b = totals(after);
  const seconds = (b.at - a.at) / 1000;
  return {
    bitrateKbps: before && seconds > 0 ? Math.round(((b.bytes - a.bytes) * 8) / seconds / 1000) : 0,
    frameRate: Math.round(b.video?.framesPerSecond ?? 0),
    width: b.video?.frameWidth ?? 0,
    height: b.video?.frameHeight ?? 0,
  };
}
