import { GatewayError } from '../core/errors.js';
import type { VideoCodec } from '../media/codecs.js';

/**
 * Offer/answer rewriting done before the WebRTC engine sees the offer and after it writes the
 * answer. Pure string functions over SDP text, split into sections at `m=` lines.
 */
interface Section {
  lines: string[];
}

function splitSdp(sdp: string): { session: string[]; media: Section[] } {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  const session: string[] = [];
  const media: Section[] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) media.push({ lines: [line] });
    else if (media.length === 0) session.push(line);
    else media[media.length - 1]!.lines.push(line);
  }
  return { session, media };
}

function joinSdp(session: string[], media: Section[]): string {
  return [...session, ...media.flatMap((m) => m.lines)].join('\r\n') + '\r\n';
}

export interface OfferedCodec {
  payloadType: number;
  name: string;
  clockRate: number;
  fmtp: Record<string, string>;
}

function parseFmtp(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k) out[k.toLowerCase()] = v.join('=');
  }
  return out;
}

function codecsOf(section: Section): OfferedCodec[] {
  const codecs = new Map<number, OfferedCodec>();
  for (const line of section.lines) {
    let m = /^a=rtpmap:(\d+) ([^/]+)\/(\d+)/.exec(line);
    if (m) {
      const pt = Number(m[1]);
      codecs.set(pt, { payloadType: pt, name: m[2]!, clockRate: Number(m[3]), fmtp: codecs.get(pt)?.fmtp ?? {} });
      continue;
    }
    m = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (m) {
      const pt = Number(m[1]);
      const existing = codecs.get(pt);
      if (existing) existing.fmtp = parseFmtp(m[2]!);
    }
  }
  // Keep the m= line's order of preference.
  const order = section.lines[0]!.split(' ').slice(3).map(Number);
  return order.map((pt) => codecs.get(pt)).filter((c): c is OfferedCodec => c !== undefined);
}

function kindOf(section: Section): string {
  return section.lines[0]!.slice(2).split(' ')[0]!;
}

/**
 * Ranks an offered H.264 variant: packetization-mode=1 is required (the RTP depacketiser and
 * FLV passthrough need it); constrained baseline 42e01f first, then other baseline variants, then
 * higher profiles. Returns undefined for variants that must not be chosen.
 */
function h264Rank(codec: OfferedCodec): number | undefined {
  if (codec.fmtp['packetization-mode'] !== '1') return undefined;
  const profile = (codec.fmtp['profile-level-id'] ?? '42001f').toLowerCase();
  if (profile === '42e01f') return 0;
  if (profile.startsWith('42e0')) return 1;
  if (profile.startsWith('42')) return 2;
  if (profile.startsWith('4d')) return 3;
  return 4;
}

/** Picks the video codec to receive: the first in `preference` that the offer carries. */
function chooseVideoCodec(
  offered: OfferedCodec[],
  preference: readonly VideoCodec[],
): { codec: VideoCodec; offered: OfferedCodec } | undefined {
  for (const wanted of preference) {
    const candidates = offered.filter((c) => c.name.toUpperCase() === wanted);
    if (wanted === 'H264') {
      const ranked = candidates
        .map((c) => ({ c, rank: h264Rank(c) }))
        .filter((x): x is { c: OfferedCodec; rank: number } => x.rank !== undefined)
        .sort((a, b) => a.rank - b.rank);
      if (ranked[0]) return { codec: 'H264', offered: ranked[0].c };
    } else if (candidates[0]) {
      return { codec: wanted, offered: candidates[0] };
    }
  }
  return undefined;
}

function keepOnlyPayloadTypes(section: Section, keep: Set<number>): Section {
  const [mline, ...rest] = section.lines;
  const parts = mline!.split(' ');
  const kept = parts.slice(3).filter((pt) => keep.has(Number(pt)));
  const lines = rest.filter((line) => {
    // Transport-wide congestion control and REMB are left out: the gateway sends neither.
    if (/^a=rtcp-fb:\S+ (?:transport-cc|goog-remb)$/.test(line) || /^a=extmap:\d+\S* \S*transport-wide-cc/.test(line))
      return false;
    const m = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ ]/.exec(line);
    return !m || keep.has(Number(m[1]));
  });
  return { lines: [[...parts.slice(0, 3), ...kept].join(' '), ...lines] };
}

export interface OfferSelection {
  /** The offer reduced to the chosen codecs, to hand to the WebRTC engine. */
  sdp: string;
  video?: { codec: VideoCodec; offered: OfferedCodec };
  audio?: OfferedCodec;
}

/** An offer the gateway cannot take: a 400 naming `offer`, as WHIP and WHEP call it. */
export class OfferError extends GatewayError {
  override name = 'OfferError';

  constructor(reason: string) {
    super('invalid_request', `offer: ${reason}`, 'offer');
  }
}

/** An error about the offer as the SDK's signalling names it (`sdp`); any other error as it is. */
export function asSdpError(error: unknown): unknown {
  if (!(error instanceof GatewayError) || error.field !== 'offer') return error;
  return new GatewayError(error.code, error.message.replace(/^offer:/, 'sdp:'), 'sdp', error.retryAfterS);
}

/**
 * Reduces every audio section to Opus and every video section to the one preferred codec, so that
 * the engine answers with exactly the codec the gateway chose (the engine itself would answer with
 * the first offered codec of each MIME type, ignoring profiles).
 */
export function selectCodecs(offer: string, preference: readonly VideoCodec[]): OfferSelection {
  if (!/^v=0\r?$/m.test(offer) || !/^m=/m.test(offer))
    throw new OfferError('the offer is not an SDP session description with media');
  const { session, media } = splitSdp(offer);
  const result: Omit<OfferSelection, 'sdp'> = {};
  const sections = media.map((section) => {
    const kind = kindOf(section);
    const offered = codecsOf(section);
    if (kind === 'video') {
      if (result.video) throw new OfferError('a stream carries at most one video track');
      const chosen = chooseVideoCodec(offered, preference);
      if (!chosen) {
        throw new OfferError(
          `no supported video codec offered (supported: ${preference.join(', ')}; H.264 needs packetization-mode=1)`,
        );
      }
      result.video = chosen;
      return keepOnlyPayloadTypes(section, new Set([chosen.offered.payloadType]));
    }
    if (kind === 'audio') {
      if (result.audio) throw new OfferError('a stream carries at most one audio track');
      const opus = offered.find((c) => c.name.toLowerCase() === 'opus');
      if (!opus) throw new OfferError('no supported audio codec offered (supported: opus)');
      result.audio = opus;
      return keepOnlyPayloadTypes(section, new Set([opus.payloadType]));
    }
    return section;
  });
  if (!result.video && !result.audio) throw new OfferError('the offer has neither audio nor video');
  return { sdp: joinSdp(session, sections), ...result };
}

/**
 * Adds Chromium's bitrate hints to the answer's video format. Without transport-wide congestion
 * control (left out on purpose, see DESIGN.md) Chromium starts from these instead of ramping slowly.
 */
export function addBitrateHints(answer: string, kbps: { start: number; min: number; max: number }): string {
  const { session, media } = splitSdp(answer);
  const hints = `x-google-start-bitrate=${kbps.start};x-google-min-bitrate=${kbps.min};x-google-max-bitrate=${kbps.max}`;
  for (const section of media) {
    if (kindOf(section) !== 'video') continue;
    const pt = section.lines[0]!.split(' ')[3];
    if (pt === undefined) continue;
    const index = section.lines.findIndex((l) => l.startsWith(`a=fmtp:${pt} `));
    if (index >= 0) section.lines[index] = `${section.lines[index]};${hints}`;
    else {
      const rtpmap = section.lines.findIndex((l) => l.startsWith(`a=rtpmap:${pt} `));
      section.lines.splice(rtpmap + 1, 0, `a=fmtp:${pt} ${hints}`);
    }
  }
  return joinSdp(session, media);
}

/** The answer with the configured bitrate as Chromium's start and top, and its floor. */
export function withBitrateHints(
  answer: string,
  options: { videoBitrateKbps: number; videoMinBitrateKbps: number },
): string {
  return addBitrateHints(answer, {
    start: options.videoBitrateKbps,
    min: options.videoMinBitrateKbps,
    max: options.videoBitrateKbps,
  });
}

/**
 * What kind of address the offer's first candidate has, for telling why no ICE check came: `IPv4
 * host`, `IPv6 srflx`, `mDNS host` (a `.local` name), or `none` (a client that sends its
 * candidates later, or gathered none).
 */
export function firstCandidateKind(sdp: string): string {
  const match = /^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\S+)/m.exec(sdp);
  if (!match) return 'none';
  const [, address = '', type = ''] = match;
  const family = address.toLowerCase().endsWith('.local') ? 'mDNS' : address.includes(':') ? 'IPv6' : 'IPv4';
  return `${family} ${type}`;
}
