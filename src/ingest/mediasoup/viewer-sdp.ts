import type { types } from 'mediasoup';
import { OfferError } from '../sdp.js';
import {
  candidateLines,
  dataChannelSection,
  dtlsOf,
  mediaHead,
  sessionLines,
  splitSdp,
  type AnswerTransport,
} from './offer.js';

/**
 * A viewer's offer (WHEP: it receives) in mediasoup's terms, and the answer that sends it the
 * publisher's tracks. Pure functions over SDP text that has passed `checkOffer`.
 */

/** Header extensions a viewer is sent with: demultiplexing by mid, and what its bandwidth estimation uses. */
const EXTENSIONS: readonly string[] = [
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'urn:3gpp:video-orientation',
];

interface ViewerMedia {
  kind: 'audio' | 'video';
  mid: string;
  /** The first payload type of its media line, for a line answered inactive. */
  firstPayloadType: string;
  /** The header extensions its line offered (`id uri`): its answer carries no other (RFC 8285, JSEP). */
  extensions: ReadonlySet<string>;
}

export interface ParsedViewerOffer {
  media: ViewerMedia[];
  /** The data channel line (SCTP), when offered: the stream's captions go to the viewer on it. */
  data?: { mid: string };
  /** Every line's mid, in the offer's order (the answer keeps it). */
  mids: string[];
  /** What the viewer can receive, for mediasoup's `consume`. */
  rtpCapabilities: types.RtpCapabilities;
  fingerprints: types.DtlsFingerprint[];
  /** The viewer's DTLS role, as mediasoup's `connect` wants it. */
  remoteRole: types.DtlsRole;
}

const numeric = (value: string): string | number => (/^\d+$/.test(value) ? Number(value) : value);

export function parseViewerOffer(offer: string): ParsedViewerOffer {
  const { sessionLines, sections } = splitSdp(offer);
  const dtls = dtlsOf(sessionLines, sections[0]!);

  const media: ViewerMedia[] = [];
  const mids: string[] = [];
  let data: { mid: string } | undefined;
  const codecs: types.RtpCodecCapability[] = [];
  const headerExtensions: types.RtpHeaderExtension[] = [];
  const takenPayloadTypes = new Set<number>();
  for (const section of sections) {
    const [kind, , , ...payloadTypes] = section[0]!.slice(2).split(' ');
    const mid = section.find((l) => l.startsWith('a=mid:'))!.slice(6);
    mids.push(mid);
    if (kind === 'application') data = { mid };
    if (kind !== 'audio' && kind !== 'video') continue;
    if (section.some((l) => l === 'a=sendonly' || l === 'a=inactive'))
      throw new OfferError(
        `media line ${media.length + 1} (${kind}) must receive (recvonly): WHEP sends media to the viewer`,
      );
    const extensions = new Set<string>();
    media.push({ kind, mid, firstPayloadType: payloadTypes[0]!, extensions });
    for (const line of section) {
      const rtpmap = /^a=rtpmap:(\d+) ([\w.-]+)\/(\d+)(?:\/(\d+))?$/.exec(line);
      if (!rtpmap) continue;
      const payloadType = Number(rtpmap[1]);
      // mediasoup takes each payload type once across the capabilities.
      if (takenPayloadTypes.has(payloadType)) continue;
      takenPayloadTypes.add(payloadType);
      const fmtp =
        section.find((l) => l.startsWith(`a=fmtp:${payloadType} `))?.slice(`a=fmtp:${payloadType} `.length) ?? '';
      const parameters = Object.fromEntries(
        fmtp
          .split(';')
          .map((part) => part.trim().split('='))
          .filter(([key, value]) => key && value !== undefined)
          .map(([key, value]) => [key!.toLowerCase(), numeric(value!)]),
      );
      const rtcpFeedback = section
        .filter((l) => l.startsWith(`a=rtcp-fb:${payloadType} `))
        .map((l) => {
          const [type, parameter] = l.slice(`a=rtcp-fb:${payloadType} `.length).split(' ');
          return { type: type!, ...(parameter ? { parameter } : {}) };
        });
      codecs.push({
        kind,
        mimeType: `${kind}/${rtpmap[2]}`,
        preferredPayloadType: payloadType,
        clockRate: Number(rtpmap[3]),
        // Opus is always 48000/2 in SDP (RFC 7587); a client that leaves the /2 out (GStreamer's
        // webrtcbin with caps that name no channels) means the same.
        ...(kind === 'audio' && (rtpmap[4] || /^opus$/i.test(rtpmap[2]!)) ? { channels: Number(rtpmap[4] ?? 2) } : {}),
        parameters,
        rtcpFeedback,
      });
    }
    for (const line of section) {
      const extmap = /^a=extmap:(\d+)(?:\/\w+)? (\S+)/.exec(line);
      if (extmap && EXTENSIONS.includes(extmap[2]!)) {
        extensions.add(`${extmap[1]} ${extmap[2]}`);
        headerExtensions.push({
          kind,
          uri: extmap[2] as types.RtpHeaderExtensionUri,
          preferredId: Number(extmap[1]),
          direction: 'sendrecv',
        });
      }
    }
  }
  if (media.length === 0) throw new OfferError('the offer has no audio or video media line');
  return { media, ...(data ? { data } : {}), mids, rtpCapabilities: { codecs, headerExtensions }, ...dtls };
}

/** What the answer sends on one media line: a consumer's RTP parameters. */
export interface SentTrack {
  kind: 'audio' | 'video';
  rtpParameters: types.RtpParameters;
}

/**
 * The SDP answer: mediasoup is ICE-lite, every media line sent on one bundled transport with the
 * codec, retransmission format, SSRCs and header extensions of its consumer; a line the stream has
 * nothing for (no such track, or no codec the viewer takes) is refused (port 0). A data channel
 * line is answered when `channel` is set (its SCTP taken), refused otherwise.
 */
export function viewerAnswerSdp(
  offer: ParsedViewerOffer,
  tracks: ReadonlyMap<string, SentTrack>,
  transport: AnswerTransport,
  announced: (address: string) => boolean,
  streamId: string,
  channel = false,
): string {
  const candidates = candidateLines(transport, announced);
  const answered = (mid: string): boolean => tracks.has(mid) || (channel && mid === offer.data?.mid);
  const lines = [...sessionLines(offer.mids.filter(answered)), `a=msid-semantic: WMS ${streamId}`];
  for (const mid of offer.mids) {
    if (mid === offer.data?.mid) {
      const refused = ['m=application 0 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', `a=mid:${mid}`];
      lines.push(...(channel ? dataChannelSection(transport, offer.remoteRole, mid, candidates) : refused));
      continue;
    }
    const media = offer.media.find((m) => m.mid === mid)!;
    const track = tracks.get(media.mid);
    if (!track) {
      lines.push(
        `m=${media.kind} 0 UDP/TLS/RTP/SAVPF ${media.firstPayloadType}`,
        'c=IN IP4 0.0.0.0',
        `a=mid:${media.mid}`,
        'a=inactive',
      );
      continue;
    }
    const { codecs, headerExtensions = [], encodings = [], rtcp } = track.rtpParameters;
    const encoding = encodings[0];
    const ssrc = encoding?.ssrc;
    const rtxSsrc = encoding?.rtx?.ssrc;
    const cname = rtcp?.cname ?? streamId;
    lines.push(
      ...mediaHead(
        media.kind,
        codecs.map((c) => c.payloadType),
        transport,
        offer.remoteRole,
        media.mid,
      ),
      'a=sendonly',
      `a=msid:${streamId} ${streamId}-${media.kind}`,
      'a=rtcp-mux',
      'a=rtcp-rsize',
      // mediasoup matches a consumer's extensions to the capabilities by id and URI, whatever their
      // kind: an extension offered on the video line only would be answered on the audio line too,
      // which browsers refuse (Firefox: "Answer has extmap … that was not present in offer").
      ...headerExtensions
        .filter((e) => media.extensions.has(`${e.id} ${e.uri}`))
        .map((e) => `a=extmap:${e.id} ${e.uri}`),
    );
    for (const codec of codecs) {
      const [, name] = codec.mimeType.split('/');
      lines.push(
        `a=rtpmap:${codec.payloadType} ${name}/${codec.clockRate}${codec.channels && codec.channels > 1 ? `/${codec.channels}` : ''}`,
      );
      const parameters = Object.entries(codec.parameters ?? {});
      if (parameters.length)
        lines.push(`a=fmtp:${codec.payloadType} ${parameters.map(([k, v]) => `${k}=${String(v)}`).join(';')}`);
      for (const feedback of codec.rtcpFeedback ?? [])
        lines.push(
          `a=rtcp-fb:${codec.payloadType} ${feedback.type}${feedback.parameter ? ` ${feedback.parameter}` : ''}`,
        );
    }
    if (ssrc !== undefined && rtxSsrc !== undefined) lines.push(`a=ssrc-group:FID ${ssrc} ${rtxSsrc}`);
    for (const s of [ssrc, rtxSsrc])
      if (s !== undefined)
        lines.push(`a=ssrc:${s} cname:${cname}`, `a=ssrc:${s} msid:${streamId} ${streamId}-${media.kind}`);
    lines.push(...candidates, 'a=end-of-candidates');
  }
  return lines.join('\r\n') + '\r\n';
}
