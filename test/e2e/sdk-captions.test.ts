import t from 'tap';
import { readCaptions } from '../../kit/captions.js';
import { TestBrowser } from '../../kit/browser.js';
import { probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { startGateway } from '../helpers/gateway.js';

// A Chromium page publishes through the SDK and sends captions with `stream.sendCaption()`: what
// nginx-rtmp received decodes, by ffmpeg's own CEA-608 decoder, to the same text.

t.test("the SDK's sendCaption: captions from the page, read back from the destination", async (t) => {
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

  const sent = ['Captions from the browser.', 'A second line, from the SDK.', 'The last one.'];
  const answers = await browser.page.evaluate(async (texts) => {
    const stream = (window as unknown as { sdkStream: { sendCaption(text: string): Promise<number> } }).sdkStream;
    const counts: unknown[] = [];
    for (const text of texts) counts.push(await stream.sendCaption(text));
    counts.push(await stream.sendCaption('bad\u0007text').catch((error: { field?: string }) => `refused: ${error.field}`));
    return counts;
  }, sent);
  t.same(answers, [1, 1, 1, 'refused: text'], 'each caption reached the push; a control character is refused, naming the field');

  const due = (await frames()) + 100;
  await waitFor('5 s more recorded', async () => (await frames()) >= due, 30_000, 250);
  const shown = (await readCaptions(nginx.recording('talk'))).map((cue) => cue.text.replace(/’/g, "'")).join(' | ');
  for (const text of sent.slice(0, 2)) t.ok(shown.includes(text), `"${text}" read back (${shown})`);
});
