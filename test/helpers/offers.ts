/**
 * A WebRTC offer shaped like Chromium's (BUNDLE, rtcp-mux, H.264 constrained baseline and VP8,
 * Opus, a host candidate on loopback), for tests that need the gateway to accept or refuse offers
 * without a browser. The answer's candidates point at 127.0.0.1 only.
 */
export function chromiumOffer(options: { ufrag?: string; port?: number } = {}): string {
  const ufrag = options.ufrag ?? 'Abcd';
  const port = options.port ?? 9;
  const fingerprint = Array.from({ length: 32 }, (_, i) =>
    ((i * 37) & 0xff).toString(16).padStart(2, '0').toUpperCase(),
  ).join(':');
  const common = [
    `a=ice-ufrag:${ufrag}`,
    'a=ice-pwd:abcdefghijklmnopqrstuvwx',
    'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${fingerprint}`,
    'a=setup:actpass',
  ];
  return [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS stream',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=candidate:1 1 udp 2122260223 127.0.0.1 ${port} typ host generation 0`,
    ...common,
    'a=mid:0',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendonly',
    'a=msid:stream audio',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    'a=ssrc:1001 cname:test',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 102',
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    ...common,
    'a=mid:1',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendonly',
    'a=msid:stream video',
    'a=rtcp-mux',
    'a=rtcp-rsize',
    'a=rtpmap:96 VP8/90000',
    'a=rtcp-fb:96 nack',
    'a=rtcp-fb:96 nack pli',
    'a=rtpmap:102 H264/90000',
    'a=rtcp-fb:102 nack',
    'a=rtcp-fb:102 nack pli',
    'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    'a=ssrc:2001 cname:test',
    '',
  ].join('\r\n');
}
