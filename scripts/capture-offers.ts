/**
 * Saves the SDP offers real clients make, for the tests that check the gateway's answers line by
 * line (`test/fixtures/offers/`): Debian's Chromium and Firefox ESR, each publishing (a camera and
 * a microphone, send only, as WHIP and the SDK do) and viewing (receive only, as WHEP does), and
 * GStreamer's webrtcbin doing both (`kit/gst-webrtc.py`). Offers are taken once ICE gathering is
 * complete, as WHIP clients send them.
 *
 *   npx tsx scripts/capture-offers.ts
 */
import { execFile } from 'node:child_process';
import { writeFile, mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { TestBrowser } from '../kit/browser.js';
import { TestFirefox } from '../kit/firefox.js';

const OUT = join(import.meta.dirname, '..', 'test', 'fixtures', 'offers');

/** Runs in the page: an offer for publishing (send only) or viewing (receive only), with its candidates. */
const MAKE_OFFER = `async (role) => {
  const pc = new RTCPeerConnection();
  if (role === 'publish') {
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
    for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
  } else {
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 5000);
  });
  const sdp = pc.localDescription.sdp;
  pc.close();
  return sdp;
}`;

/** A browser's offers for both roles, from a page at `url`; the browser is closed after. */
async function saveOffers(
  name: string,
  browser: {
    page: { goto(url: string): Promise<unknown>; evaluate(script: string): Promise<unknown> };
    close(): Promise<void>;
  },
  url: string,
): Promise<void> {
  try {
    await browser.page.goto(url);
    for (const role of ['publish', 'view']) {
      const sdp = await browser.page.evaluate(`(${MAKE_OFFER})('${role}')`);
      await writeFile(join(OUT, `${name}-${role}.sdp`), String(sdp));
    }
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  // A page on localhost: browsers open the camera only in a secure context.
  const server = createServer((_request, response) => response.end('<!doctype html><title>offers</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  await mkdir(OUT, { recursive: true });
  try {
    await saveOffers('chromium', await TestBrowser.launch(), url);
    await saveOffers('firefox', await TestFirefox.launch(), url);
    for (const role of ['publish', 'view']) {
      const { stdout } = await promisify(execFile)(
        '/usr/bin/python3',
        [join(import.meta.dirname, '..', 'kit', 'gst-webrtc.py'), 'offer', role],
        { timeout: 20_000 },
      );
      await writeFile(join(OUT, `gstreamer-${role}.sdp`), stdout);
    }
  } finally {
    server.close();
  }
  console.log(`offers saved in ${OUT}`);
}

await main();
