import t from 'tap';
import { addBitrateHints, OfferError, selectCodecs } from '../../src/ingest/sdp.js';
import { candidateAddresses } from '../helpers/sdp-lines.js';
import { RemoteAddressFilter, filterCandidates } from '../../src/ingest/address-filter.js';

/** A trimmed Chromium offer: VP8 first, several H.264 variants, RTX, transport-cc. */
const OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9',
  'c=IN IP4 0.0.0.0',
  'a=candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host',
  'a=candidate:2 1 udp 2122260223 127.0.0.1 50001 typ host',
  'a=candidate:3 1 udp 2122260223 3b1c9a2e-1111.local 50002 typ host',
  'a=mid:0',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=rtpmap:9 G722/8000',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 goog-remb',
  'a=rtcp-fb:96 nack',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:102 H264/90000',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
  'a=rtpmap:103 H264/90000',
  'a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032',
  'a=rtpmap:104 H264/90000',
  'a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
  'a=rtpmap:105 H264/90000',
  'a=fmtp:105 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtcp-fb:105 nack pli',
  'a=rtcp-fb:105 transport-cc',
  'a=rtpmap:106 rtx/90000',
  'a=fmtp:106 apt=105',
  'a=rtpmap:107 VP9/90000',
  '',
].join('\r\n');

t.test('H.264 packetization-mode=1 constrained baseline is chosen over VP8 and other H.264 variants', async (t) => {
  const s = selectCodecs(OFFER, ['H264', 'VP8', 'VP9']);
  t.equal(s.video?.codec, 'H264');
  t.equal(s.video?.offered.payloadType, 105);
  t.match(s.sdp, /^m=video 9 UDP\/TLS\/RTP\/SAVPF 105\r$/m, 'only the chosen payload type stays');
  t.notMatch(s.sdp, /a=rtpmap:(96|97|102|103|104|106|107) /);
  t.equal(s.audio?.payloadType, 111);
  t.match(s.sdp, /^m=audio 9 UDP\/TLS\/RTP\/SAVPF 111\r$/m);
});

t.test('transport-wide congestion control and REMB are removed from the offer', async (t) => {
  const s = selectCodecs(OFFER, ['H264']);
  t.notMatch(s.sdp, /transport-cc/);
  t.notMatch(s.sdp, /transport-wide-cc/);
  t.notMatch(s.sdp, /goog-remb/);
  t.match(s.sdp, /a=rtcp-fb:105 nack pli/);
});

t.test('the configured preference decides between codecs', async (t) => {
  t.equal(selectCodecs(OFFER, ['VP8', 'H264']).video?.codec, 'VP8');
  t.equal(selectCodecs(OFFER, ['VP9']).video?.offered.payloadType, 107);
});

t.test('H.264 with only packetization-mode=0 is refused with a clear reason', async (t) => {
  const offer = OFFER.replace(/packetization-mode=1/g, 'packetization-mode=0')
    .replace(/a=rtpmap:9[67] .*\r\n/g, '')
    .replace(/a=rtpmap:107 .*\r\n/, '');
  t.throws(() => selectCodecs(offer, ['H264', 'VP8', 'VP9']), {
    name: 'OfferError',
    message: /no supported video codec offered.*packetization-mode=1/,
  });
});

t.test('an offer that is not SDP is an OfferError', async (t) => {
  t.throws(() => selectCodecs('hello', ['H264']), OfferError);
  t.throws(() => selectCodecs('v=0\r\ns=-\r\n', ['H264']), OfferError);
});

t.test('two video tracks in one offer are refused', async (t) => {
  const twice =
    OFFER +
    'm=video 9 UDP/TLS/RTP/SAVPF 105\r\na=mid:2\r\na=rtpmap:105 H264/90000\r\na=fmtp:105 packetization-mode=1\r\n';
  t.throws(() => selectCodecs(twice, ['H264']), { message: /at most one video track/ });
});

t.test('bitrate hints are added to the answer video format', async (t) => {
  const answer =
    'v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 105\r\na=rtpmap:105 H264/90000\r\na=fmtp:105 packetization-mode=1\r\n';
  const out = addBitrateHints(answer, { start: 2500, min: 300, max: 2500 });
  t.match(
    out,
    /a=fmtp:105 packetization-mode=1;x-google-start-bitrate=2500;x-google-min-bitrate=300;x-google-max-bitrate=2500/,
  );
  const vp8 = addBitrateHints('v=0\r\nm=video 9 RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n', {
    start: 1,
    min: 1,
    max: 1,
  });
  t.match(vp8, /a=rtpmap:96 VP8\/90000\r\na=fmtp:96 x-google-start-bitrate=1/);
});

t.test('offer candidates outside the allowed networks and mDNS names are dropped', async (t) => {
  const loopback = new RemoteAddressFilter(['127.0.0.0/8']);
  const filtered = filterCandidates(OFFER, (a) => loopback.allows(a));
  t.same(candidateAddresses(filtered), ['127.0.0.1']);
  const open = new RemoteAddressFilter([]);
  const any = filterCandidates(OFFER, (a) => open.allows(a));
  t.same(candidateAddresses(any), ['192.0.2.2', '127.0.0.1'], 'no networks configured: any IP, never an mDNS name');
});

t.test('the answer announces only the configured addresses', async (t) => {
  const answer =
    'v=0\r\na=candidate:1 1 udp 1 127.0.0.1 40000 typ host\r\na=candidate:2 1 udp 1 192.0.2.2 40001 typ host\r\n';
  t.same(candidateAddresses(filterCandidates(answer, (a) => a === '127.0.0.1')), ['127.0.0.1']);
});

t.test('RemoteAddressFilter checks IPv4 and IPv6 networks', async (t) => {
  const f = new RemoteAddressFilter(['127.0.0.0/8', '::1/128']);
  t.ok(f.allows('127.0.0.2'));
  t.ok(f.allows('::1'));
  t.notOk(f.allows('192.0.2.2'));
  t.notOk(f.allows('fd00::2'));
  t.notOk(f.allows('abc.local'));
});
