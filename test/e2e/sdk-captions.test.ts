import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readCaptions, type DecodedCaption } from '../../kit/captions.js';
import { TestBrowser } from '../../kit/browser.js';
import { probe } from '../../kit/probe.js';
import { now, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { startGateway } from '../helpers/gateway.js';

// A Chromium page publishes through the SDK; captions come over its WebSocket, over the publish's
// own data channel and over REST from a backend. What nginx-rtmp received and what the recording
// holds decode, by ffmpeg's own CEA-608 decoder, to the same text, each caption as far from the one
// before as it was sent.

const werift = process.env.GATEWAY_WEBRTC_ENGINE === 'werift' && 'werift takes no data channel';

/** A caption this far after the one before (ms): far enough apart to tell their places apart. */
const APART_MS = 1500;

t.test(
  "the SDK's captions, over its WebSocket, its data channel and REST: read back from the destination and the recording",
  { skip: werift },
  async (t) => {
    const nginx = await NginxRtmp.start();
    const records = await mkdtemp(join(tmpdir(), 'sdk-captions-'));
    const gw = await startGateway({ record_dir: records, record_min_free_mb: 1 });
    const browser = await TestBrowser.launch();
    // In this order: the recording's ffmpeg has ended before its folder goes.
    t.teardown(async () => {
      await browser.close();
      await gw.close();
      await nginx.stop();
      await rm(records, { recursive: true, force: true });
    });

    await browser.page.goto(`${gw.baseUrl}/health`);
    const published = await browser.publishThroughSdk(gw.baseUrl, {
      name: 'talk',
      rtmpUrl: `${nginx.url()}/talk`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(published, 'PUBLISHING');
    const recording = await gw.post('/rest-api/push/startup', { streamName: 'talk', rtmpUrl: 'record://' });
    t.equal(recording.status, 200, JSON.stringify(recording.body));
    const frames = async (): Promise<number> =>
      (await probe(nginx.recording('talk')).catch(() => undefined))?.video.length ?? 0;
    await waitFor('1 s recorded', async () => (await frames()) >= 20, 30_000, 250);
    await waitFor(
      'the data channel open',
      () =>
        browser.page.evaluate(() =>
          (window as unknown as { sdkStream: PageStream }).sdkStream.sendCaptionOnDataChannel('Hello.'),
        ),
      10_000,
      50,
    );

    type PageStream = {
      sendCaption(text: string): Promise<number>;
      sendCaptionOnDataChannel(text: string): boolean;
    };
    const overWebSocket = (text: string): Promise<unknown> =>
      browser.page.evaluate(
        (caption) =>
          (window as unknown as { sdkStream: PageStream }).sdkStream
            .sendCaption(caption)
            .catch((error: { field?: string }) => `refused: ${error.field}`),
        text,
      );
    const overDataChannel = (text: string): Promise<unknown> =>
      browser.page.evaluate(
        (caption) => (window as unknown as { sdkStream: PageStream }).sdkStream.sendCaptionOnDataChannel(caption),
        text,
      );
    const overRest = async (text: string): Promise<unknown> =>
      ((await gw.post('/rest-api/stream/caption', { streamName: 'talk', text })).body as { pushes: number }).pushes;
    const sent = [
      { text: 'Captions from the browser.', send: overWebSocket, answer: 2 },
      { text: 'Over the data channel.', send: overDataChannel, answer: true },
      { text: 'And from a backend, over REST.', send: overRest, answer: 2 },
      { text: 'The last one, on the channel.', send: overDataChannel, answer: true },
    ];
    // After the caption that found the channel open has gone out (608 paces each: one sent right
    // behind another rolls in after it).
    const sentAt: number[] = [now()];
    for (const [i, { text, send, answer }] of sent.entries()) {
      await waitFor('the next caption due', () => now() >= sentAt.at(-1)! + APART_MS, 5000, 10);
      if (i === 0) sentAt.length = 0;
      sentAt.push(now());
      t.equal(
        await send(text),
        answer,
        `"${text}": sent (${answer === true ? 'on the channel' : `in ${answer} pushes`})`,
      );
    }
    t.equal(await overWebSocket('bad\u0007text'), 'refused: text', 'a control character is refused, naming the field');
    t.equal(await overDataChannel('bad\u0007text'), true);
    await waitFor(
      'the refused data channel caption counted',
      async () =>
        ((await gw.post('/rest-api/stream/find', { name: 'talk' })).body as { messagesRefused?: number }[])[0]
          ?.messagesRefused === 1,
      10_000,
      100,
    );
    // The last caption shows until it is erased, 10 s on: the decoder tells a roll-up row once the
    // screen changes next.
    const due = (await frames()) + 12 * 20;
    await waitFor('12 s more recorded', async () => (await frames()) >= due, 60_000, 250);
    t.equal(
      (
        await gw.post('/rest-api/push/terminate', {
          mediaSessionId: (recording.body as { mediaSessionId: string }).mediaSessionId,
        })
      ).status,
      200,
    );
    const [part] = (await gw.post('/rest-api/recording/find_all', { streamName: 'talk' })).body as {
      fileName: string;
    }[];

    const decoded: Record<string, DecodedCaption[]> = {
      destination: await readCaptions(nginx.recording('talk')),
      recording: await readCaptions(join(records, part!.fileName)),
    };
    const plain = (cues: DecodedCaption[]): string[] => cues.map((cue) => cue.text.replace(/’/g, "'"));
    t.same(
      plain(decoded.destination!),
      plain(decoded.recording!),
      'the destination and the recording decode to the same captions',
    );
    for (const [what, cues] of Object.entries(decoded)) {
      const shown = plain(cues);
      for (const { text } of sent)
        t.ok(
          shown.some((cue) => cue.endsWith(text)),
          `${what}: "${text}" read back (${shown.join(' | ')})`,
        );
      const startOf = (text: string): number => cues.find((cue) => cue.text.endsWith(text))?.startS ?? NaN;
      for (let i = 1; i < sent.length; i++) {
        const shownApartMs = (startOf(sent[i]!.text) - startOf(sent[i - 1]!.text)) * 1000;
        const sentApartMs = sentAt[i]! - sentAt[i - 1]!;
        t.ok(
          Math.abs(shownApartMs - sentApartMs) <= 300,
          `${what}: captions ${i - 1} and ${i} sent ${Math.round(sentApartMs)} ms apart, shown ${Math.round(shownApartMs)} ms apart`,
        );
      }
    }
  },
);
