import t from 'tap';
import { answerDeviations, savedOffer } from '../helpers/sdp-lines.js';

// The checker the answer tests rely on: it must find each kind of deviation.
t.test('the line-by-line check of an answer finds every deviation', async (t) => {
  const offer = [
    'v=0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'a=mid:0',
    'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
    'a=mid:1',
    'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=rtpmap:96 VP8/90000',
    'a=rtcp-fb:96 nack',
    'a=rtpmap:97 rtx/90000',
    'a=fmtp:97 apt=96',
    '',
  ].join('\r\n');
  const good = offer
    .replace(' 96 97', ' 96')
    .replace('a=rtpmap:97 rtx/90000\r\n', '')
    .replace('a=fmtp:97 apt=96\r\n', '');
  t.same(answerDeviations(offer, good), []);
  t.same(
    answerDeviations(
      offer,
      offer.replace(
        'a=mid:0\r\n',
        'a=mid:0\r\na=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n',
      ),
    ),
    ['line 1 (audio): extmap 4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time not offered on this line'],
  );
  t.same(answerDeviations(offer, offer.replace('a=rtcp-fb:111 transport-cc', 'a=rtcp-fb:111 nack')), [
    'line 1 (audio): a=rtcp-fb:111 nack not offered on this line',
  ]);
  t.same(answerDeviations(offer, offer.replace('SAVPF 96 97', 'SAVPF 96 98').replace('a=rtpmap:97', 'a=rtpmap:98')), [
    'line 2 (video): payload type 98 not on its line of the offer',
  ]);
  t.same(answerDeviations(offer, offer.replace('a=rtpmap:96 VP8', 'a=rtpmap:96 H264')), [
    'line 2 (video): payload type 96 is h264/90000, offered as vp8/90000',
  ]);
  t.same(answerDeviations(offer, offer.replace('a=mid:1', 'a=mid:2')), ['line 2 (video): a=mid:2 for a=mid:1']);
  t.ok(savedOffer('firefox-view').includes('THIS_IS_SDPARTA'), "the saved offers are the browsers' own");
});
