import { OfferError } from './sdp.js';

/** The largest offer taken (a browser's is 5-10 KB); the HTTP and WebSocket limits are set from it. */
export const MAX_OFFER_BYTES = 128 * 1024;

const TOKEN = /^[\w.!#$%&'*+^`{|}~-]{1,64}$/;
const M_LINE = /^m=(\w+) (\d{1,5})(?:\/\d+)? ([\w/]+)((?: [\w*-]+)+)$/;
const FINGERPRINT = /^a=fingerprint:(sha-1|sha-224|sha-256|sha-384|sha-512) ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+)$/;
const SETUP = /^a=setup:(actpass|active|passive|holdconn)$/;
/** RFC 8839 candidate grammar, far enough for the engine: foundation, component, transport, priority, address, port, type. */
export const CANDIDATE =
  /^a=candidate:[\w+/]{1,32} \d{1,3} (?:udp|UDP|tcp|TCP) \d{1,10} ([\w.:-]{1,253}) \d{1,5} typ (?:host|srflx|prflx|relay)(?: \S+)*$/;

/**
 * Checks what the WebRTC engine takes for granted, so that a malformed offer is a 400 naming what is
 * wrong rather than an exception inside the engine: SDP line syntax, media lines, a unique `a=mid` on
 * each, ICE credentials, a DTLS fingerprint and role, a BUNDLE group naming existing mids, RTP maps,
 * and candidates. Data channels (`m=application`, one, SCTP over DTLS) only where `dataChannel` is
 * set (a publisher on mediasoup: its captions channel).
 */
export function checkOffer(offer: string, options: { dataChannel?: boolean } = {}): void {
  if (Buffer.byteLength(offer) > MAX_OFFER_BYTES)
    throw new OfferError(`the offer is larger than ${MAX_OFFER_BYTES} bytes`);
  const lines = offer.split(/\r?\n/).filter((l) => l !== '');
  if (lines[0] !== 'v=0') throw new OfferError('the offer must start with v=0');
  const sessionLevel = new Set<string>();
  const sections: { kind: string; lines: string[] }[] = [];
  for (const [index, line] of lines.entries()) {
    // eslint-disable-next-line no-control-regex
    if (!/^[a-z]=[^\x00-\x08\x0b-\x1f\x7f]*$/.test(line))
      throw new OfferError(`line ${index + 1} is not an SDP line (x=value)`);
    if (line.startsWith('m=')) {
      const m = M_LINE.exec(line);
      if (!m) throw new OfferError(`line ${index + 1}: malformed media line`);
      const kind = m[1]!;
      if (kind === 'application') {
        if (!options.dataChannel) throw new OfferError('data channels (m=application) are not supported here');
        const second = sections.some((s) => s.kind === 'application');
        if (second) throw new OfferError('the offer has more than one data channel line (m=application)');
        if (m[3] !== 'UDP/DTLS/SCTP' || m[4]!.trim() !== 'webrtc-datachannel') {
          throw new OfferError(
            `media line ${sections.length + 1}: data channels must be UDP/DTLS/SCTP webrtc-datachannel`,
          );
        }
        sections.push({ kind, lines: [line] });
        continue;
      }
      if (kind !== 'audio' && kind !== 'video') throw new OfferError(`media "${kind}" is not supported`);
      if (!/^(UDP\/TLS\/RTP\/SAVPF|RTP\/SAVPF)$/.test(m[3]!))
        throw new OfferError(
          `media line ${sections.length + 1}: transport ${m[3]} is not supported (UDP/TLS/RTP/SAVPF)`,
        );
      if (
        m[4]!
          .trim()
          .split(' ')
          .some((pt) => !/^\d{1,3}$/.test(pt) || Number(pt) > 127)
      )
        throw new OfferError(`media line ${sections.length + 1}: payload types must be 0-127`);
      sections.push({ kind, lines: [line] });
    } else if (sections.length === 0) {
      sessionLevel.add(line.slice(0, line.indexOf(':') > 0 ? line.indexOf(':') : line.length));
      checkAttribute(line, 'session');
    } else {
      sections.at(-1)!.lines.push(line);
      checkAttribute(line, `media line ${sections.length}`);
    }
  }
  if (sections.length === 0) throw new OfferError('the offer has no media line');
  if (sections.length > 4) throw new OfferError('the offer has more than 4 media lines');
  const mids = new Set<string>();
  for (const [i, section] of sections.entries()) {
    const where = `media line ${i + 1} (${section.kind})`;
    const has = (prefix: string): boolean => section.lines.some((l) => l.startsWith(prefix));
    const mid = section.lines.find((l) => l.startsWith('a=mid:'))?.slice(6);
    if (mid === undefined) throw new OfferError(`${where} has no a=mid`);
    if (mids.has(mid)) throw new OfferError(`${where}: a=mid:${mid} is used twice`);
    mids.add(mid);
    for (const [attribute, what] of [
      ['a=ice-ufrag:', 'ICE user name (a=ice-ufrag)'],
      ['a=ice-pwd:', 'ICE password (a=ice-pwd)'],
      ['a=fingerprint:', 'DTLS fingerprint (a=fingerprint)'],
    ] as const) {
      if (!has(attribute) && !sessionLevel.has(attribute.slice(0, -1))) throw new OfferError(`${where} has no ${what}`);
    }
    if (!has('a=setup:') && !sessionLevel.has('a=setup')) throw new OfferError(`${where} has no DTLS role (a=setup)`);
    if (section.kind === 'application') continue;
    if (!has('a=rtcp-mux')) throw new OfferError(`${where} needs a=rtcp-mux`);
    const payloadTypes = section.lines[0]!.split(' ').slice(3);
    for (const line of section.lines) {
      const pt = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+|\*) /.exec(line)?.[1];
      if (pt !== undefined && pt !== '*' && !payloadTypes.includes(pt))
        throw new OfferError(`${where}: ${line.split(' ')[0]} names a payload type not in the media line`);
    }
  }
  // One transport per publisher (one UDP port): every media line in one BUNDLE group. The engine
  // leaves a separate transport running when an unbundled line's transport is replaced.
  const bundles = lines.filter((l) => l.startsWith('a=group:BUNDLE'));
  if (bundles.length > 1) throw new OfferError('the offer has more than one a=group:BUNDLE');
  const bundled = new Set(bundles[0]?.split(' ').slice(1) ?? []);
  for (const mid of bundled)
    if (!mids.has(mid)) throw new OfferError(`a=group:BUNDLE names mid ${mid}, which no media line has`);
  if (sections.length > 1 && [...mids].some((mid) => !bundled.has(mid)))
    throw new OfferError('every media line must be in one a=group:BUNDLE (max-bundle)');
}

function checkAttribute(line: string, where: string): void {
  const fail = (what: string): never => {
    throw new OfferError(`${where}: malformed ${what}`);
  };
  if (line.startsWith('a=mid:') && !TOKEN.test(line.slice(6))) fail('a=mid (1-64 token characters)');
  else if (line.startsWith('a=ice-ufrag:') && !/^[A-Za-z0-9+/]{4,256}$/.test(line.slice(12))) fail('a=ice-ufrag');
  else if (line.startsWith('a=ice-pwd:') && !/^[A-Za-z0-9+/]{22,256}$/.test(line.slice(10))) fail('a=ice-pwd');
  else if (line.startsWith('a=fingerprint:') && !FINGERPRINT.test(line)) fail('a=fingerprint');
  else if (line.startsWith('a=setup:') && !SETUP.test(line)) fail('a=setup');
  else if (line.startsWith('a=candidate') && !CANDIDATE.test(line)) fail('a=candidate');
  else if (line.startsWith('a=rtpmap:') && !/^a=rtpmap:\d{1,3} [\w.-]{1,32}\/\d{1,6}(?:\/\d{1,2})?$/.test(line))
    fail('a=rtpmap');
  else if (line.startsWith('a=ssrc:') && !/^a=ssrc:\d{1,10}( .*)?$/.test(line)) fail('a=ssrc');
  else if (line.startsWith('a=ssrc-group:') && !/^a=ssrc-group:\w+( \d{1,10})+$/.test(line)) fail('a=ssrc-group');
  else if (line.startsWith('a=extmap:') && !/^a=extmap:\d{1,3}(?:\/\w+)? \S+( \S+)*$/.test(line)) fail('a=extmap');
  else if (line.startsWith('a=group:') && !/^a=group:\w+( [\w.!#$%&'*+^`{|}~-]{1,64})*$/.test(line)) fail('a=group');
  else if (line.startsWith('a=sctp-port:') && !/^a=sctp-port:\d{1,5}$/.test(line)) fail('a=sctp-port');
  else if (line.startsWith('a=max-message-size:') && !/^a=max-message-size:\d{1,10}$/.test(line))
    fail('a=max-message-size');
}
