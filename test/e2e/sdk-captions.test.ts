import t from 'tap';
import { readCaptions } from '../../kit/captions.js';
import { TestBrowser } from '../../kit/browser.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { startGateway } from '../helpers/gateway.js';

// A Chromium page publishes through the SDK and sends captions with `stream.sendCaption()` and on
// the publish's data channel: what nginx-rtmp received decodes, by ffmpeg's own CEA-608 decoder,
// to the same text, each caption as far from the one before as the page sent them.

const werift = process.env.GATEWAY_WEBRTC_ENGINE === 'werift' && 'werift takes no data channel';

t.test("the SDK's captions, over its WebSocket and its data channel: read back from the destination", { skip: werift }, async (t) => {
  const nginx = await NginxRtmp.start();
  t.teardown(() => nginx.stop());
  const gw = await startGateway({});
  t.teardown(() => gw.close());
  const browser = await TestBrowser.launch();
  t.teardown(() => browser.close());

  await browser.page.goto(`${gw.baseUrl}/health`);
  const published = await browser.publishThroughSdk(gw.baseUrl, { name: 'talk', rtmpUrl: `${nginx.url()}/talk`, rtmpTransponderFullUrl: true });
  t.equal(published, 'PUBLISHING');
  const frames = async (): Promise<number> => (await probe(nginx.recording('talk')).catch(() => undefined))?.video.length ?? 0;
  await waitFor('1 s recorded', async () => (await frames()) >= 20, 30_000, 250);

  // Over the session's WebSocket (answered) and over the publish's own data channel (not), a
  // second and a half apart: each is placed on the frames captured when the gateway got it.
  const sent = ['Captions from the browser.', 'Over the data channel.', 'A third line, from the SDK.', 'The last one.'];
  type PageStream = {
    sendCaption(text: string): Promise<number>;
    sendCaptionOnDataChannel(text: string): boolean;
  };
  const result = await browser.page.evaluate(async (texts) => {
    const stream = (window as unknown as { sdkStream: PageStream }).sdkStream;
    const answers: unknown[] = [];
    const sentAt: number[] = [];
    sentAt.push(performance.now());
    answers.push(await stream.sendCaption(texts[0]!));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    sentAt.push(performance.now());
    answers.push(stream.sendCaptionOnDataChannel(texts[1]!));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    sentAt.push(performance.now());
    answers.push(await stream.sendCaption(texts[2]!));
    answers.push(stream.sendCaptionOnDataChannel(texts[3]!));
    answers.push(await stream.sendCaption('bad\u0007text').catch((error: { field?: string }) => `refused: ${error.field}`));
    answers.push(stream.sendCaptionOnDataChannel('bad\u0007text'));
    return { answers, sentAt };
  }, sent);
  t.same(result.answers, [1, true, 1, true, 'refused: text', true], 'each caption reached the push; a control character is refused, naming the field');
  await waitFor(
    'the refused data channel caption counted',
    async () => ((await gw.post('/rest-api/stream/find', { name: 'talk' })).body as { messagesRefused?: number }[])[0]?.messagesRefused === 1,
    10_000,
    100,
  );

  const due = (await frames()) + 100;
  await waitFor('5 s more recorded', async () => (await frames()) >= due, 30_000, 250);
  const cues = await readCaptions(nginx.recording('talk'));
  const shown = cues.map((cue) => cue.text.replace(/’/g, "'")).join(' | ');
  for (const text of sent.slice(0, 3)) t.ok(shown.includes(text), `"${text}" read back (${shown})`);
  const startOf = (text: string): number => cues.find((cue) => cue.text.endsWith(text))?.startS ?? NaN;
  for (const i of [1, 2]) {
    const shownApartMs = (startOf(sent[i]!) - startOf(sent[i - 1]!)) * 1000;
    const sentApartMs = result.sentAt[i]! - result.sentAt[i - 1]!;
    t.ok(Math.abs(shownApartMs - sentApartMs) <= 300, `captions ${i - 1} and ${i}: sent ${Math.round(sentApartMs)} ms apart, shown ${Math.round(shownApartMs)} ms apart`);
  }
});
