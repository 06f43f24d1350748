import t from 'tap';
import { viewerCodecs } from '../../src/ingest/mediasoup/codecs.js';
import { parseViewerOffer, viewerAnswerSdp, type SentTrack } from '../../src/ingest/mediasoup/viewer-sdp.js';
import { savedOffer } from '../helpers/sdp-lines.js';

// A viewer's offer (WHEP) read into what mediasoup consumes with, and the answer that sends to it.

const offer = (direction = 'recvonly'): string =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 108 109',
    'c=IN IP4 0.0.0.0',
    'a=ice-ufrag:abcd',
    'a=ice-pwd:abcdefghijklmnopqrstuvwx',
    'a=fingerprint:sha-256 AB:CD',
    'a=setup:actpass',
    'a=mid:0',
    `a=${direction}`,
    'a=rtcp-mux',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=rtpmap:96 VP8/90000',
    'a=rtpmap:97 rtx/90000',
    'a=fmtp:97 apt=96',
    'a=rtpmap:102 H264/90000',
    'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f',
    'a=rtpmap:103 rtx/90000',
    'a=fmtp:103 apt=102',
    'a=rtpmap:108 H264/90000',
    'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    'a=rtcp-fb:108 nack',
    'a=rtcp-fb:108 nack pli',
    'a=rtpmap:109 rtx/90000',
    'a=fmtp:109 apt=108',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'c=IN IP4 0.0.0.0',
    'a=mid:1',
    `a=${direction}`,
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=fmtp:111 minptime=10;useinbandfec=1',
  ].join('\r\n') + '\r\n';

t.test('a receive-only offer: what the viewer takes, with its payload types', async (t) => {
  const parsed = parseViewerOffer(offer());
  t.same(
    parsed.media.map((m) => [m.kind, m.mid]),
    [
      ['video', '0'],
      ['audio', '1'],
    ],
  );
  t.match(
    parsed.rtpCapabilities.codecs!.find((c) => c.preferredPayloadType === 108),
    {
      mimeType: 'video/H264',
      parameters: { 'profile-level-id': '42e01f', 'packetization-mode': 1 },
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
    },
  );
  t.match(parsed, { remoteRole: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD' }] });
  t.throws(() => parseViewerOffer(offer('sendonly')), /must receive \(recvonly\)/);
});

t.test("the viewers' router takes the stream's codecs under the viewer's payload types, nothing else", async (t) => {
  const produced = [
    { mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 },
    {
      mimeType: 'video/H264',
      payloadType: 101,
      clockRate: 90000,
      parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' },
    },
  ];
  const codecs = viewerCodecs(parseViewerOffer(offer()).rtpCapabilities, produced);
  t.same(
    codecs.map((c) => [c.mimeType, c.preferredPayloadType]),
    [
      ['audio/opus', 111],
      ['video/H264', 108],
    ],
    'H.264 42e01f as 108, not 42001f (102), and no VP8',
  );
});

t.test('the answer sends on each line the stream has, and refuses the others', async (t) => {
  const parsed = parseViewerOffer(offer());
  const transport = {
    iceParameters: { usernameFragment: 'u', password: 'p', iceLite: true },
    iceCandidates: [
      {
        foundation: 'f',
        priority: 1,
        ip: '127.0.0.1',
        address: '127.0.0.1',
        protocol: 'udp' as const,
        port: 40000,
        type: 'host' as const,
      },
    ],
    dtlsParameters: { role: 'auto' as const, fingerprints: [{ algorithm: 'sha-256' as const, value: 'EF:01' }] },
  };
  const video = {
    kind: 'video' as const,
    rtpParameters: {
      codecs: [
        {
          mimeType: 'video/H264',
          payloadType: 108,
          clockRate: 90000,
          parameters: { 'packetization-mode': 1 },
          rtcpFeedback: [{ type: 'nack' }],
        },
      ],
      encodings: [{ ssrc: 1234 }],
      rtcp: { cname: 'c' },
    },
  };
  const answer = viewerAnswerSdp(parsed, new Map([['0', video]]), transport, () => true, 'gw');
  t.match(answer, /m=video 9 UDP\/TLS\/RTP\/SAVPF 108\r\n/);
  t.match(answer, /a=mid:0\r\na=sendonly\r\n/);
  t.match(answer, /a=rtpmap:108 H264\/90000\r\na=fmtp:108 packetization-mode=1\r\na=rtcp-fb:108 nack\r\n/);
  t.match(answer, /a=ssrc:1234 cname:c\r\n/);
  t.match(answer, /a=setup:passive/);
  t.match(
    answer,
    /m=audio 0 UDP\/TLS\/RTP\/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=inactive/,
    'no audio track: its line refused',
  );
  t.match(answer, /a=group:BUNDLE 0\r\n/);

  // A data channel line (the player's captions): answered with SCTP where taken, in the offer's order.
  const withChannel = offer()
    .replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0 2 1')
    .replace(
      'm=audio',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\nm=audio',
    );
  const channelled = parseViewerOffer(withChannel);
  t.same(channelled.mids, ['0', '2', '1']);
  const taken = viewerAnswerSdp(channelled, new Map([['0', video]]), transport, () => true, 'gw', true);
  t.match(taken, /a=group:BUNDLE 0 2\r\n/);
  t.match(
    taken,
    /a=ssrc:1234 msid:gw gw-video\r\n(?:a=candidate.*\r\n)+a=end-of-candidates\r\nm=application 9 UDP\/DTLS\/SCTP webrtc-datachannel\r\n/,
    'after the video line',
  );
  t.match(taken, /a=mid:2\r\na=sctp-port:5000\r\na=max-message-size:65536\r\n/);
  const refused = viewerAnswerSdp(channelled, new Map([['0', video]]), transport, () => true, 'gw');
  t.match(
    refused,
    /m=application 0 UDP\/DTLS\/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n/,
    'refused when not taken',
  );
});

t.test('each answered line carries only the header extensions its offered line carried', async (t) => {
  // Laid out as Firefox offers it: abs-send-time and transport-cc on the video line only, the
  // same mid extension id on both lines.
  const firefoxLike =
    [
      'v=0',
      'o=mozilla...THIS_IS_SDPARTA-128.0 1 0 IN IP4 0.0.0.0',
      's=-',
      't=0 0',
      'a=fingerprint:sha-256 AB:CD',
      'a=group:BUNDLE 0 1',
      'a=ice-options:trickle',
      'a=msid-semantic:WMS *',
      'm=audio 9 UDP/TLS/RTP/SAVPF 109',
      'c=IN IP4 0.0.0.0',
      'a=recvonly',
      'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
      'a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level',
      'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
      'a=ice-pwd:abcdefghijklmnopqrstuvwx',
      'a=ice-ufrag:abcd',
      'a=mid:0',
      'a=rtcp-mux',
      'a=rtpmap:109 opus/48000/2',
      'a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1',
      'a=setup:actpass',
      'm=video 9 UDP/TLS/RTP/SAVPF 120 126',
      'c=IN IP4 0.0.0.0',
      'a=recvonly',
      'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
      'a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
      'a=extmap:5 urn:ietf:params:rtp-hdrext:toffset',
      'a=extmap:6/recvonly http://www.webrtc.org/experiments/rtp-hdrext/playout-delay',
      'a=extmap:7 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
      'a=ice-pwd:abcdefghijklmnopqrstuvwx',
      'a=ice-ufrag:abcd',
      'a=mid:1',
      'a=rtcp-fb:120 nack',
      'a=rtcp-fb:120 nack pli',
      'a=rtcp-fb:120 transport-cc',
      'a=rtcp-mux',
      'a=rtpmap:120 VP8/90000',
      'a=rtpmap:126 H264/90000',
      'a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1',
      'a=setup:actpass',
    ].join('\r\n') + '\r\n';
  const parsed = parseViewerOffer(firefoxLike);
  const transport = {
    iceParameters: { usernameFragment: 'u', password: 'p', iceLite: true },
    iceCandidates: [
      {
        foundation: 'f',
        priority: 1,
        ip: '127.0.0.1',
        address: '127.0.0.1',
        protocol: 'udp' as const,
        port: 40000,
        type: 'host' as const,
      },
    ],
    dtlsParameters: { role: 'auto' as const, fingerprints: [{ algorithm: 'sha-256' as const, value: 'EF:01' }] },
  };
  // What mediasoup gives each consumer: every extension whose id and URI the capabilities hold, whatever the line.
  const headerExtensions = [
    { uri: 'urn:ietf:params:rtp-hdrext:sdes:mid' as const, id: 3 },
    { uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time' as const, id: 4 },
    { uri: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01' as const, id: 7 },
  ];
  const audio = {
    kind: 'audio' as const,
    rtpParameters: {
      codecs: [{ mimeType: 'audio/opus', payloadType: 109, clockRate: 48000, channels: 2 }],
      headerExtensions,
      encodings: [{ ssrc: 1 }],
    },
  };
  const video = {
    kind: 'video' as const,
    rtpParameters: {
      codecs: [{ mimeType: 'video/VP8', payloadType: 120, clockRate: 90000 }],
      headerExtensions,
      encodings: [{ ssrc: 2 }],
    },
  };
  const answer = viewerAnswerSdp(
    parsed,
    new Map<string, SentTrack>([
      ['0', audio],
      ['1', video],
    ]),
    transport,
    () => true,
    'gw',
  );
  const [, audioLine, videoLine] = answer.split(/(?=\r\nm=)/);
  const extmaps = (section: string | undefined): string[] =>
    (section ?? '').split('\r\n').filter((l) => l.startsWith('a=extmap:'));
  t.same(
    extmaps(audioLine),
    ['a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid'],
    'the audio line: its mid extension alone',
  );
  t.same(
    extmaps(videoLine),
    [
      'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
      'a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
      'a=extmap:7 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    ],
    'the video line: the three it offered',
  );
});

t.test('the view offers real clients made are read as they mean them', async (t) => {
  const codecsOf = (client: string): string[] =>
    parseViewerOffer(savedOffer(`${client}-view`)).rtpCapabilities.codecs!.map(
      (c) => `${c.mimeType}${c.channels ? `/${c.channels}` : ''}`,
    );
  t.ok(
    codecsOf('chromium').includes('video/H264') && codecsOf('chromium').includes('audio/opus/2'),
    'Chromium receives H.264 and Opus',
  );
  t.notOk(codecsOf('firefox').includes('video/H264'), 'this Firefox (no OpenH264) receives no H.264');
  t.ok(codecsOf('firefox').includes('video/VP8') && codecsOf('firefox').includes('audio/opus/2'), 'but VP8 and Opus');
  t.match(savedOffer('gstreamer-view'), /a=rtpmap:\d+ OPUS\/48000\r\n/, 'GStreamer writes Opus without its channels');
  t.ok(codecsOf('gstreamer').includes('audio/OPUS/2'), 'and it is taken as the stereo Opus it is');
});
