import t from 'tap';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway } from '../helpers/gateway.js';
import { answerDeviations, savedOffer } from '../helpers/sdp-lines.js';
import { testFixture } from '../helpers/synthetic.js';

// The offers real clients make (saved from Debian's Chromium and Firefox ESR, and GStreamer's
// webrtcbin, by scripts/capture-offers.ts), answered by the real engine: each answer follows its offer line by line, as the
// browsers require (Firefox refuses an answer with an extension its line did not offer). A viewer
// that cannot decode the stream's video is told so with a 406 naming the codecs.

const gw = await startGateway({ webrtc_engine: 'mediasoup' });
const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'cam');
t.teardown(async () => {
  await publisher.stop();
  await gw.close();
});
const post = (path: string, offer: string): Promise<Response> =>
  fetch(gw.baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });

/** The offer without its video line (and the line's mid left out of the BUNDLE group). */
function withoutVideo(offer: string): string {
  const parts = offer.split(/(?=^m=)/m);
  const video = parts.find((p) => p.startsWith('m=video'))!;
  const mid = /^a=mid:(\S+)/m.exec(video)![1];
  return parts
    .filter((p) => p !== video)
    .join('')
    .replace(new RegExp(`^(a=group:BUNDLE .*?) ${mid}\\b`, 'm'), '$1');
}

for (const client of ['chromium', 'firefox', 'gstreamer']) {
  t.test(`${client}'s publish offer: the WHIP answer follows it line by line`, async (t) => {
    const offer = savedOffer(`${client}-publish`);
    const res = await post(`/whip/${client}-pub`, offer);
    const answer = await res.text();
    t.equal(res.status, 201, answer);
    t.same(answerDeviations(offer, answer), [], 'no line carries what its line of the offer did not');
    await fetch(new URL(res.headers.get('location')!, gw.baseUrl), { method: 'DELETE' });
  });
}

for (const client of ['chromium', 'gstreamer']) {
  t.test(`${client}'s view offer: the WHEP answer sends H.264 and Opus, line by line as offered`, async (t) => {
    const offer = savedOffer(`${client}-view`);
    const res = await post('/whep/cam', offer);
    const answer = await res.text();
    t.equal(res.status, 201, answer);
    t.same(answerDeviations(offer, answer), []);
    t.match(answer, /a=rtpmap:\d+ H264\/90000/);
    t.notMatch(answer, /^m=\w+ 0 /m, 'no line refused');
    await fetch(new URL(res.headers.get('location')!, gw.baseUrl), { method: 'DELETE' });
  });
}

t.test(
  "firefox's view offer without an H.264 decoder: 406 naming the stream's codec and the ones it takes",
  async (t) => {
    const offer = savedOffer('firefox-view');
    t.notMatch(offer, /H264/, 'this Firefox has no OpenH264');
    const res = await post('/whep/cam', offer);
    t.equal(res.status, 406);
    t.match(await res.json(), {
      error: 'not_acceptable',
      field: 'offer',
      message: /the stream's video is H264, and the offer receives video as VP8, VP9.* only/,
    });

    const audioOnly = withoutVideo(offer);
    const heard = await post('/whep/cam', audioOnly);
    const answer = await heard.text();
    t.equal(heard.status, 201, 'an offer for the audio alone gets it');
    t.same(answerDeviations(audioOnly, answer), []);
    await fetch(new URL(heard.headers.get('location')!, gw.baseUrl), { method: 'DELETE' });
  },
);
