import type { types } from 'mediasoup';

/** The codecs the router takes: each H.264 profile a browser or encoder offers, VP8, VP9, AV1 and Opus. */
export const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  ...['42e01f', '42001f', '4d001f', '640032'].map((profile): types.RouterRtpCodecCapability => ({
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': profile, 'level-asymmetry-allowed': 1 },
  })),
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 0 } },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 2 } },
  { kind: 'video', mimeType: 'video/AV1', clockRate: 90000 },
];

/** The H.264 profile, packetization mode or VP9 profile that tells two codecs of one MIME type apart. */
export const flavour = (codec: { mimeType: string; parameters?: Record<string, unknown> }): string => {
  const p = (codec.parameters ?? {}) as Record<string, string | number | undefined>;
  if (/h264/i.test(codec.mimeType))
    return `${String(p['profile-level-id'] ?? '').toLowerCase()}/${String(p['packetization-mode'] ?? 0)}`;
  if (/vp9/i.test(codec.mimeType)) return String(p['profile-id'] ?? 0);
  return '';
};

const sameCodec = (
  a: { mimeType: string; clockRate: number; parameters?: Record<string, unknown> },
  b: typeof a,
): boolean =>
  a.mimeType.toLowerCase() === b.mimeType.toLowerCase() && a.clockRate === b.clockRate && flavour(a) === flavour(b);

/**
 * The codecs of a stream's tracks (`produced`), with the payload types a viewer offered for them.
 * mediasoup sends a consumer's packets with its router's payload types, and a browser that offered
 * decodes by its own offer's: each set of payload types gets a router of its own (viewers with the
 * same browser share one). Only the stream's codecs: the router adds a retransmission format per
 * video codec from the payload types left, which more codecs could make collide with one offered.
 */
export function viewerCodecs(
  capabilities: types.RtpCapabilities,
  produced: readonly types.RtpCodecParameters[],
): types.RouterRtpCodecCapability[] {
  const offered = capabilities.codecs ?? [];
  return MEDIA_CODECS.filter((codec) => produced.some((p) => sameCodec(p, codec))).flatMap((codec) => {
    const match = offered.find((o) => sameCodec(o, codec));
    return match ? [{ ...codec, preferredPayloadType: match.preferredPayloadType }] : [];
  });
}
