import t from 'tap';
import { answerSdp, parseOffer, producerParameters } from '../../src/ingest/mediasoup/offer.js';
import { checkOffer } from '../../src/ingest/offer-check.js';
import { selectCodecs } from '../../src/ingest/sdp.js';
import { chromiumOffer } from '../helpers/offers.js';
import { answerDeviations, savedOffer } from '../helpers/sdp-lines.js';

// A publisher's offer in mediasoup's terms, and mediasoup's transport as the answer.

/** Chromium's video section with RTX for H.264 and transport-wide congestion control. */
const withRtx = chromiumOffer()
  .replace('m=video 9 UDP/TLS/RTP/SAVPF 96 102', 'm=video 9 UDP/TLS/RTP/SAVPF 96 102 103')
  .replace(
    'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\na=rtcp-fb:102 transport-cc\r\na=rtcp-fb:102 ccm fir\r\na=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\na=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  )
  .replace('a=ssrc:2001 cname:test', 'a=ssrc-group:FID 2001 2002\r\na=ssrc:2001 cname:test\r\na=ssrc:2002 cname:test');

t.test('the chosen codecs, their RTX, SSRCs, feedback and extensions become producer parameters', async (t) => {
  checkOffer(withRtx);
  const parsed = parseOffer(withRtx, selectCodecs(withRtx, ['H264', 'VP8']));
  t.equal(parsed.remoteRole, 'client', 'actpass: the publisher is the DTLS client');
  t.equal(parsed.iceUfrag, 'Abcd');
  t.match(parsed.fingerprints, [{ algorithm: 'sha-256', value: /^[0-9A-F:]+$/ }]);
  const [audio, video] = parsed.media;
  t.match(audio, { kind: 'audio', mid: '0', codec: { name: 'opus', payloadType: 111 }, ssrc: 1001, cname: 'test' });
  t.match(video, {
    kind: 'video',
    mid: '1',
    codec: { name: 'H264', payloadType: 102 },
    rtxPayloadType: 103,
    ssrc: 2001,
    rtxSsrc: 2002,
  });
  t.same(video!.rtcpFeedback, [
    { type: 'nack' },
    { type: 'nack', parameter: 'pli' },
    { type: 'ccm', parameter: 'fir' },
    { type: 'transport-cc' },
  ]);
  t.same(audio!.rtcpFeedback, [], 'transport-cc only where its header extension is offered');

  const params = producerParameters(video!);
  t.match(params, {
    mid: '1',
    codecs: [
      {
        mimeType: 'video/H264',
        payloadType: 102,
        clockRate: 90000,
        parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' },
      },
      { mimeType: 'video/rtx', payloadType: 103, parameters: { apt: 102 } },
    ],
    encodings: [{ ssrc: 2001, rtx: { ssrc: 2002 } }],
    rtcp: { cname: 'test', reducedSize: true },
  });
  t.same(params.headerExtensions!.map((e) => e.uri).sort(), [
    'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'urn:ietf:params:rtp-hdrext:sdes:mid',
  ]);
  t.match(producerParameters(audio!), {
    codecs: [{ mimeType: 'audio/opus', channels: 2, parameters: { minptime: 10, useinbandfec: 1 } }],
    encodings: [{ ssrc: 1001 }],
  });
});

t.test(
  'an offer without SSRCs is matched by its mid; a passive publisher makes the gateway the DTLS client',
  async (t) => {
    const bare = chromiumOffer()
      .replace(/a=ssrc:\d+ cname:test\r\n/g, '')
      .replace(/a=setup:actpass/g, 'a=setup:passive');
    const parsed = parseOffer(bare, selectCodecs(bare, ['VP8']));
    t.equal(parsed.remoteRole, 'server');
    t.same(
      producerParameters(parsed.media[1]!).encodings,
      [{}],
      'one encoding, no SSRC: the first packet of its mid names it',
    );
    t.match(parsed.media[1], { codec: { name: 'VP8' } });
  },
);

t.test(
  'the answer: ICE-lite, one bundled transport, the chosen codec with its RTX, only announced candidates',
  async (t) => {
    const parsed = parseOffer(withRtx, selectCodecs(withRtx, ['H264']));
    const answer = answerSdp(
      parsed,
      {
        iceParameters: { usernameFragment: 'msufrag', password: 'mspassword0123456789abcdef', iceLite: true },
        iceCandidates: [
          {
            foundation: 'udpcandidate',
            priority: 1076302079,
            address: '127.0.0.1',
            ip: '127.0.0.1',
            protocol: 'udp',
            port: 40001,
            type: 'host',
          },
          {
            foundation: 'udpcandidate',
            priority: 1076302078,
            address: '10.0.0.5',
            ip: '10.0.0.5',
            protocol: 'udp',
            port: 40001,
            type: 'host',
          },
        ],
        dtlsParameters: { role: 'auto', fingerprints: [{ algorithm: 'sha-256', value: 'AA:BB' }] },
      },
      (address) => address === '127.0.0.1',
    );
    const lines = answer.split('\r\n');
    t.ok(lines.includes('a=ice-lite'));
    t.ok(lines.includes('a=group:BUNDLE 0 1'));
    t.ok(lines.includes('m=video 9 UDP/TLS/RTP/SAVPF 102 103'), 'the chosen codec and its RTX only');
    t.ok(lines.includes('m=audio 9 UDP/TLS/RTP/SAVPF 111'));
    t.ok(lines.includes('a=fmtp:103 apt=102'));
    t.ok(lines.includes('a=rtcp-fb:102 nack pli'));
    t.ok(lines.includes('a=setup:passive'));
    t.ok(lines.includes('a=recvonly'));
    t.equal(lines.filter((l) => l.startsWith('a=candidate:')).length, 2, 'one candidate per media line');
    t.notOk(answer.includes('10.0.0.5'), 'an address not announced is not in the answer');
    t.notOk(
      lines.some((l) => l.startsWith('a=rtpmap:96')),
      'VP8 is not answered',
    );
    checkOffer(answer.replace('a=ice-lite\r\n', '').replace(/a=recvonly/g, 'a=sendonly')); // well-formed SDP, as offers are checked
  },
);

t.test(
  'the answers to the offers real clients made (Chromium, Firefox ESR, GStreamer) follow them line by line',
  async (t) => {
    const transport = {
      iceParameters: { usernameFragment: 'msufrag', password: 'mspassword0123456789abcdef', iceLite: true },
      iceCandidates: [
        {
          foundation: 'udpcandidate',
          priority: 1076302079,
          address: '127.0.0.1',
          ip: '127.0.0.1',
          protocol: 'udp' as const,
          port: 40001,
          type: 'host' as const,
        },
      ],
      dtlsParameters: { role: 'auto' as const, fingerprints: [{ algorithm: 'sha-256' as const, value: 'AA:BB' }] },
    };
    for (const client of ['chromium', 'firefox', 'gstreamer']) {
      const offer = savedOffer(`${client}-publish`);
      checkOffer(offer);
      for (const codecs of [['H264', 'VP8', 'VP9'], ['VP8'], ['VP9', 'VP8']] as const) {
        let selection;
        try {
          selection = selectCodecs(offer, codecs);
        } catch {
          continue; // none of these codecs offered (GStreamer offers H.264 alone)
        }
        const answer = answerSdp(parseOffer(offer, selection), transport, (a) => a === '127.0.0.1');
        t.same(
          answerDeviations(offer, answer),
          [],
          `${client}, preferring ${codecs.join(', ')}: ${selection.video?.codec}`,
        );
      }
    }
  },
);

/** Chromium's video section sending three simulcast layers, lowest first, identified by RID (no SSRC listed). */
const simulcast = (lines: string): string =>
  chromiumOffer().replace(
    'a=ssrc:2001 cname:test',
    `a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\na=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n${lines}`,
  );

t.test('a simulcast offer: one encoding per layer by RID, and an answer that receives them', async (t) => {
  const offer = simulcast('a=rid:l send\r\na=rid:m send\r\na=rid:h send\r\na=simulcast:send l;m;~h');
  checkOffer(offer);
  const parsed = parseOffer(offer, selectCodecs(offer, ['H264', 'VP8']));
  const video = parsed.media.find((m) => m.kind === 'video')!;
  t.same(video.rids, ['l', 'm', 'h'], 'in the order listed; a paused layer is a layer');
  t.same(producerParameters(video).encodings, [{ rid: 'l' }, { rid: 'm' }, { rid: 'h' }]);
  t.match(
    video.extensions.filter((e) => e.id >= 10),
    [
      { id: 10, uri: /rtp-stream-id$/ },
      { id: 11, uri: /repaired-rtp-stream-id$/ },
    ],
    'the RID extensions are taken',
  );
  const answer = answerSdp(
    parsed,
    {
      iceParameters: { usernameFragment: 'u', password: 'p' },
      iceCandidates: [],
      dtlsParameters: { fingerprints: [{ algorithm: 'sha-256', value: 'AA' }] },
    },
    () => true,
  );
  t.match(answer, /a=rid:l recv\r\na=rid:m recv\r\na=rid:h recv\r\na=simulcast:recv l;m;h\r\n/);
  const single = parseOffer(simulcast('a=rid:h send\r\na=simulcast:send h'), selectCodecs(offer, ['H264']));
  t.equal(single.media.find((m) => m.kind === 'video')!.rids, undefined, 'one layer is no simulcast');
});

t.test('a simulcast offer the gateway cannot take is a 400 naming the offer, and says why', async (t) => {
  const refused = (lines: string): unknown => {
    const offer = simulcast(lines);
    try {
      parseOffer(offer, selectCodecs(offer, ['H264']));
    } catch (error) {
      return error;
    }
    return undefined;
  };
  t.match(refused('a=rid:l send\r\na=simulcast:send l;m'), {
    field: 'offer',
    message: /layer "m" has no a=rid:m send/,
  });
  t.match(refused('a=rid:l recv\r\na=simulcast:recv l'), { field: 'offer', message: /must send its layers/ });
  t.match(refused('a=rid:a send\r\na=rid:b send\r\na=rid:c send\r\na=rid:d send\r\na=simulcast:send a;b;c;d'), {
    field: 'offer',
    message: /at most 3 simulcast layers/,
  });
  t.match(refused('a=rid:l send\r\na=simulcast:send l;l'), { field: 'offer', message: /listed twice/ });
  t.match(refused('a=rid:l*x send\r\na=simulcast:send l*x'), { field: 'offer', message: /RID must be/ });
});

/** Chromium's offer with its data channel line between audio and video, as a page that makes the channel first sends it. */
const withChannel = ((): string => {
  const offer = chromiumOffer().replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0 2 1');
  const common = offer
    .split('\r\n')
    .filter((l) => /^a=(ice-ufrag|ice-pwd|fingerprint|setup):/.test(l))
    .slice(0, 4);
  const channel = [
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    ...common,
    'a=mid:2',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
  ];
  return offer.replace('m=video', `${channel.join('\r\n')}\r\nm=video`);
})();

t.test(
  "a publisher's data channel line: taken where the engine takes it, answered in the offer's order with SCTP",
  async (t) => {
    t.throws(
      () => checkOffer(withChannel),
      { field: 'offer', message: /data channels \(m=application\) are not supported here/ },
      'not where the engine has none',
    );
    checkOffer(withChannel, { dataChannel: true });
    const refuse = (offer: string): unknown => t.throws(() => checkOffer(offer, { dataChannel: true }));
    refuse(withChannel.replace('UDP/DTLS/SCTP webrtc-datachannel', 'DTLS/SCTP 5000'));
    refuse(withChannel.replace('a=sctp-port:5000', 'a=sctp-port:x'));
    refuse(withChannel.replace('a=group:BUNDLE 0 2 1', 'a=group:BUNDLE 0 1'));
    const parsed = parseOffer(withChannel, selectCodecs(withChannel, ['H264']));
    t.same(parsed.data, { mid: '2' });
    t.same(parsed.mids, ['0', '2', '1']);
    const answer = answerSdp(
      parsed,
      {
        iceParameters: { usernameFragment: 'msufrag', password: 'mspassword0123456789abcdef', iceLite: true },
        iceCandidates: [
          {
            foundation: 'udpcandidate',
            priority: 1076302079,
            address: '127.0.0.1',
            ip: '127.0.0.1',
            protocol: 'udp',
            port: 40001,
            type: 'host',
          },
        ],
        dtlsParameters: { role: 'auto', fingerprints: [{ algorithm: 'sha-256', value: 'AA:BB' }] },
      },
      () => true,
    );
    const lines = answer.split('\r\n');
    t.ok(lines.includes('a=group:BUNDLE 0 2 1'));
    t.same(
      lines.filter((l) => l.startsWith('m=')),
      [
        'm=audio 9 UDP/TLS/RTP/SAVPF 111',
        'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
        'm=video 9 UDP/TLS/RTP/SAVPF 102',
      ],
      "the offer's order",
    );
    t.ok(lines.includes('a=sctp-port:5000') && lines.includes('a=max-message-size:65536'));
    checkOffer(answer.replace('a=ice-lite\r\n', '').replace(/a=recvonly/g, 'a=sendonly'), { dataChannel: true });
  },
);
