import { wallClockMs } from '../../core/clock.js';
import type { types } from 'mediasoup';
import { OfferError, type OfferedCodec, type OfferSelection } from '../sdp.js';

/**
 * A publisher's offer in mediasoup's terms, and mediasoup's transport back as the SDP answer.
 * Pure functions over SDP text: the offer has passed `checkOffer` and `selectCodecs`, which chose
 * one codec per media line; here its retransmission format (RTX), SSRCs, header extensions and the
 * ICE and DTLS parameters are read.
 */

/** Header extensions the gateway takes: demultiplexing by mid and by simulcast layer (rid), and what bandwidth estimation uses. */
const EXTENSIONS: readonly types.RtpHeaderExtensionUri[] = [
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
  'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
];
const TRANSPORT_CC = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

export interface OfferedMedia {
  kind: 'audio' | 'video';
  mid: string;
  codec: OfferedCodec;
  /** The RTX format repairing `codec` (`apt`), when offered. */
  rtxPayloadType?: number;
  rtcpFeedback: types.RtcpFeedback[];
  extensions: { uri: types.RtpHeaderExtensionUri; id: number }[];
  ssrc?: number;
  rtxSsrc?: number;
  cname?: string;
  /**
   * Simulcast: the layers' RIDs, lowest first (as the offer's `a=simulcast` lists them: the SDK,
   * like mediasoup's own client, lists them so). Each is a layer of its own for the gateway.
   */
  rids?: string[];
}

/** The most a data channel message may be (bytes), as the answer announces (`a=max-message-size`). */
export const DATA_MESSAGE_MAX_BYTES = 65_536;

export interface ParsedOffer {
  media: OfferedMedia[];
  /** The data channel line (SCTP), when offered: its mid. */
  data?: { mid: string };
  /** The mids of the lines answered, in the offer's order (the answer keeps it). */
  mids: string[];
  iceUfrag: string;
  icePwd: string;
  fingerprints: types.DtlsFingerprint[];
  /** The publisher's DTLS role, as mediasoup's `connect` wants it. */
  remoteRole: types.DtlsRole;
}

/** Feedback the gateway answers for each kind: retransmissions and keyframes for video, bandwidth estimation for both. */
function feedbackFor(kind: 'audio' | 'video', offered: Set<string>, transportCc: boolean): types.RtcpFeedback[] {
  const wanted: types.RtcpFeedback[] =
    kind === 'video'
      ? [
          { type: 'nack' },
          { type: 'nack', parameter: 'pli' },
          { type: 'ccm', parameter: 'fir' },
          { type: 'goog-remb' },
          { type: 'transport-cc' },
        ]
      : [{ type: 'transport-cc' }];
  return wanted.filter(
    (f) => offered.has(f.parameter ? `${f.type} ${f.parameter}` : f.type) && (f.type !== 'transport-cc' || transportCc),
  );
}

/** An offer's session-level lines and its media sections (each from its `m=` line). */
export function splitSdp(offer: string): { sessionLines: string[]; sections: string[][] } {
  const sessionLines: string[] = [];
  const sections: string[][] = [];
  for (const line of offer.split(/\r?\n/).filter((l) => l !== '')) {
    if (line.startsWith('m=')) sections.push([line]);
    else if (sections.length === 0) sessionLines.push(line);
    else sections.at(-1)!.push(line);
  }
  return { sessionLines, sections };
}

/** The peer's DTLS fingerprints and role (as mediasoup's `connect` wants it), from the session and first media section. */
export function dtlsOf(
  sessionLines: string[],
  first: string[],
): { fingerprints: types.DtlsFingerprint[]; remoteRole: types.DtlsRole } {
  const fingerprints = [...sessionLines, ...first]
    .filter((l) => l.startsWith('a=fingerprint:'))
    .map((l) => {
      const [algorithm, value] = l.slice(14).split(' ');
      return { algorithm: algorithm!.toLowerCase() as types.FingerprintAlgorithm, value: value!.toUpperCase() };
    });
  if (fingerprints.length === 0) throw new OfferError('the offer has no DTLS fingerprint');
  const setup = [...first, ...sessionLines].find((l) => l.startsWith('a=setup:'))?.slice(8);
  // actpass or active: the peer is the DTLS client; passive: it waits for the gateway to be.
  return { fingerprints, remoteRole: setup === 'passive' ? 'server' : 'client' };
}

export function parseOffer(offer: string, selection: OfferSelection): ParsedOffer {
  const { sessionLines, sections } = splitSdp(offer);
  const attribute = (section: string[], name: string): string | undefined =>
    (section.find((l) => l.startsWith(`a=${name}:`)) ?? sessionLines.find((l) => l.startsWith(`a=${name}:`)))?.slice(
      name.length + 3,
    );

  const first = sections[0]!;
  const dtls = dtlsOf(sessionLines, first);
  const media: OfferedMedia[] = [];
  let data: { mid: string } | undefined;
  const mids: string[] = [];
  for (const section of sections) {
    const kind = section[0]!.slice(2).split(' ')[0];
    if (kind === 'application') {
      data = { mid: attribute(section, 'mid')! };
      mids.push(data.mid);
      continue;
    }
    if (kind !== 'audio' && kind !== 'video') continue;
    const codec = kind === 'video' ? selection.video?.offered : selection.audio;
    if (!codec) continue;
    const mid = attribute(section, 'mid')!;
    const rtx = section
      .map((l) => /^a=fmtp:(\d+) apt=(\d+)$/.exec(l))
      .find(
        (m) => m && Number(m[2]) === codec.payloadType && section.some((l) => l.startsWith(`a=rtpmap:${m[1]} rtx/`)),
      );
    const extensions = section
      .map((l) => /^a=extmap:(\d+)(?:\/\w+)? (\S+)/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && (EXTENSIONS as readonly string[]).includes(m[2]!))
      .map((m) => ({ uri: m[2] as types.RtpHeaderExtensionUri, id: Number(m[1]) }));
    const offeredFeedback = new Set(
      section
        .filter((l) => l.startsWith(`a=rtcp-fb:${codec.payloadType} `))
        .map((l) => l.slice(`a=rtcp-fb:${codec.payloadType} `.length)),
    );
    // The media SSRC is the first of a FID group (its RTX the second), or the only one listed.
    const fid = section
      .find((l) => l.startsWith('a=ssrc-group:FID '))
      ?.split(' ')
      .slice(1)
      .map(Number);
    const ssrcs = [
      ...new Set(section.filter((l) => l.startsWith('a=ssrc:')).map((l) => Number(l.slice(7).split(' ')[0]))),
    ];
    const ssrc = fid?.[0] ?? (ssrcs.length === 1 ? ssrcs[0] : undefined);
    const cname = section.find((l) => l.startsWith(`a=ssrc:${ssrc} cname:`))?.split('cname:')[1];
    const rids = kind === 'video' ? simulcastRids(section) : undefined;
    mids.push(mid);
    media.push({
      kind,
      mid,
      codec,
      ...(rtx ? { rtxPayloadType: Number(rtx[1]) } : {}),
      rtcpFeedback: feedbackFor(
        kind,
        offeredFeedback,
        extensions.some((e) => e.uri === TRANSPORT_CC),
      ),
      extensions,
      ...(ssrc !== undefined && !rids ? { ssrc } : {}),
      ...(fid?.[1] !== undefined && !rids ? { rtxSsrc: fid[1] } : {}),
      ...(cname ? { cname } : {}),
      ...(rids ? { rids } : {}),
    });
  }
  return {
    media,
    ...(data ? { data } : {}),
    mids,
    iceUfrag: attribute(first, 'ice-ufrag')!,
    icePwd: attribute(first, 'ice-pwd')!,
    ...dtls,
  };
}

/** Most simulcast layers a stream is taken with: more are refused. */
const MAX_LAYERS = 3;

/**
 * The RIDs a video section sends as simulcast (`a=simulcast:send`, each `a=rid:… send`), in the
 * order listed; undefined when it sends one stream. Of alternatives (`a,b`) the first is taken; a
 * layer listed paused (`~a`) is taken all the same, its RTP coming once the sender resumes it.
 */
function simulcastRids(section: readonly string[]): string[] | undefined {
  const line = section.find((l) => l.startsWith('a=simulcast:'));
  if (!line) return undefined;
  const quoted = JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}…` : line);
  const sent = /(?:^|\s)send\s+(\S+)/.exec(line.slice('a=simulcast:'.length));
  if (!sent) throw new OfferError(`a=simulcast must send its layers: ${quoted}`);
  const declared = new Set(
    section.map((l) => /^a=rid:(\S+) send(?:\s|$)/.exec(l)?.[1]).filter((rid) => rid !== undefined),
  );
  const rids = sent[1]!.split(';').map((alternatives) => alternatives.split(',')[0]!.replace(/^~/, ''));
  for (const rid of rids) {
    if (!/^[A-Za-z0-9_-]{1,16}$/.test(rid)) {
      throw new OfferError(
        `a simulcast layer's RID must be 1 to 16 letters, digits, - or _: ${JSON.stringify(rid.slice(0, 40))}`,
      );
    }
    if (!declared.has(rid)) throw new OfferError(`the simulcast layer "${rid}" has no a=rid:${rid} send line`);
  }
  if (new Set(rids).size !== rids.length) throw new OfferError(`a simulcast layer is listed twice: ${quoted}`);
  if (rids.length > MAX_LAYERS)
    throw new OfferError(`at most ${MAX_LAYERS} simulcast layers are taken, the offer sends ${rids.length}`);
  return rids.length > 1 ? rids : undefined;
}

/** What mediasoup's `produce` takes for one offered media line. */
export function producerParameters(media: OfferedMedia): types.RtpParameters {
  const { codec } = media;
  const mimeType = `${media.kind}/${codec.name}`;
  const codecs: types.RtpCodecParameters[] = [
    {
      mimeType,
      payloadType: codec.payloadType,
      clockRate: codec.clockRate,
      ...(media.kind === 'audio' ? { channels: 2 } : {}),
      parameters: numericValues(codec.fmtp),
      rtcpFeedback: media.rtcpFeedback,
    },
  ];
  if (media.rtxPayloadType !== undefined) {
    codecs.push({
      mimeType: `${media.kind}/rtx`,
      payloadType: media.rtxPayloadType,
      clockRate: codec.clockRate,
      parameters: { apt: codec.payloadType },
      rtcpFeedback: [],
    });
  }
  const encoding: types.RtpEncodingParameters =
    media.ssrc === undefined
      ? {}
      : {
          ssrc: media.ssrc,
          ...(media.rtxSsrc !== undefined && media.rtxPayloadType !== undefined
            ? { rtx: { ssrc: media.rtxSsrc } }
            : {}),
        };
  return {
    mid: media.mid,
    codecs,
    headerExtensions: media.extensions,
    encodings: media.rids ? media.rids.map((rid) => ({ rid })) : [encoding],
    rtcp: { ...(media.cname ? { cname: media.cname } : {}), reducedSize: true },
  };
}

/** fmtp values as mediasoup compares them: numbers as numbers (`packetization-mode: 1`). */
function numericValues(fmtp: Record<string, string>): Record<string, string | number> {
  return Object.fromEntries(Object.entries(fmtp).map(([k, v]) => [k, /^\d+$/.test(v) ? Number(v) : v]));
}

export interface AnswerTransport {
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
}

/**
 * The first lines of an answer's media section (RTP, or SCTP for data channels): the transport's ICE
 * and DTLS parameters, and the line's mid.
 */
export function mediaHead(
  kind: string,
  formats: readonly (number | string)[],
  transport: AnswerTransport,
  remoteRole: types.DtlsRole,
  mid: string,
  protocol = 'UDP/TLS/RTP/SAVPF',
): string[] {
  const fingerprint =
    transport.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256') ??
    transport.dtlsParameters.fingerprints[0]!;
  return [
    `m=${kind} 9 ${protocol} ${formats.join(' ')}`,
    'c=IN IP4 0.0.0.0',
    `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
    `a=ice-pwd:${transport.iceParameters.password}`,
    `a=fingerprint:${fingerprint.algorithm} ${fingerprint.value}`,
    `a=setup:${remoteRole === 'client' ? 'passive' : 'active'}`,
    `a=mid:${mid}`,
  ];
}

/** An answer's data channel line, taken: SCTP over the transport's DTLS, with the candidates. */
export function dataChannelSection(
  transport: AnswerTransport,
  remoteRole: types.DtlsRole,
  mid: string,
  candidates: readonly string[],
): string[] {
  return [
    ...mediaHead('application', ['webrtc-datachannel'], transport, remoteRole, mid, 'UDP/DTLS/SCTP'),
    'a=sctp-port:5000',
    `a=max-message-size:${DATA_MESSAGE_MAX_BYTES}`,
    ...candidates,
    'a=end-of-candidates',
  ];
}

/** The transport's host candidates on the addresses the gateway announces. */
export function candidateLines(transport: AnswerTransport, announced: (address: string) => boolean): string[] {
  return transport.iceCandidates
    .filter((c) => c.protocol === 'udp' && announced(c.address))
    .map((c) => `a=candidate:${c.foundation} 1 udp ${c.priority} ${c.address} ${c.port} typ host`);
}

/**
 * The SDP answer: mediasoup is ICE-lite, every media line is received on one bundled transport,
 * each with the one codec chosen, its RTX, the feedback and header extensions taken.
 */
export function answerSdp(
  offer: ParsedOffer,
  transport: AnswerTransport,
  announced: (address: string) => boolean,
): string {
  const candidates = candidateLines(transport, announced);
  const sections = new Map<string, string[]>();
  if (offer.data)
    sections.set(offer.data.mid, dataChannelSection(transport, offer.remoteRole, offer.data.mid, candidates));
  for (const media of offer.media) {
    const { codec } = media;
    const payloadTypes = [codec.payloadType, ...(media.rtxPayloadType !== undefined ? [media.rtxPayloadType] : [])];
    sections.set(media.mid, [
      ...mediaHead(media.kind, payloadTypes, transport, offer.remoteRole, media.mid),
      'a=recvonly',
      'a=rtcp-mux',
      'a=rtcp-rsize',
      ...media.extensions.map((e) => `a=extmap:${e.id} ${e.uri}`),
      `a=rtpmap:${codec.payloadType} ${codec.name}/${codec.clockRate}${media.kind === 'audio' ? '/2' : ''}`,
      ...(Object.keys(codec.fmtp).length
        ? [
            `a=fmtp:${codec.payloadType} ${Object.entries(codec.fmtp)
              .map(([k, v]) => `${k}=${v}`)
              .join(';')}`,
          ]
        : []),
      ...media.rtcpFeedback.map(
        (f) => `a=rtcp-fb:${codec.payloadType} ${f.type}${f.parameter ? ` ${f.parameter}` : ''}`,
      ),
      ...(media.rtxPayloadType !== undefined
        ? [
            `a=rtpmap:${media.rtxPayloadType} rtx/${codec.clockRate}`,
            `a=fmtp:${media.rtxPayloadType} apt=${codec.payloadType}`,
          ]
        : []),
      ...(media.rids
        ? [...media.rids.map((rid) => `a=rid:${rid} recv`), `a=simulcast:recv ${media.rids.join(';')}`]
        : []),
      ...candidates,
      'a=end-of-candidates',
    ]);
  }
  const lines = sessionLines(offer.mids);
  for (const mid of offer.mids) lines.push(...sections.get(mid)!);
  return lines.join('\r\n') + '\r\n';
}

/** An answer's session lines: mediasoup is ICE-lite, and the media lines `mids` are bundled on one transport. */
export function sessionLines(mids: readonly string[]): string[] {
  const origin = `o=- ${wallClockMs()} 2 IN IP4 127.0.0.1`;
  return ['v=0', origin, 's=-', 't=0 0', 'a=ice-lite', `a=group:BUNDLE ${mids.join(' ')}`];
}
