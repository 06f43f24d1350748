import { TestBrowser } from '../kit/browser.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import type { Bench } from './report.js';

/**
 * WHEP glass-to-glass on this machine: a Chromium page publishes a canvas through the SDK and
 * watches the same stream back through the gateway over WHEP (`watch`). Each painted frame carries
 * the time it was painted as two rows of black and white blocks; each frame the viewer's <video> is
 * about to show is read back, and its delay is its expected display time minus the painted time.
 * So it holds the browser's capture, encode, the gateway's forwarding, the viewer's jitter buffer and
 * decode: everything but the camera and the screen. One page, so both times are on one clock.
 */
export async function glassToGlass(bench: Bench, gateway: GatewayProcess, seconds: number): Promise<void> {
  console.log(`\nWHEP glass-to-glass: Chromium publishes a canvas and watches it back over WHEP (${seconds} s)`);
  const browser = await TestBrowser.launch(['--autoplay-policy=no-user-gesture-required']);
  try {
    const { page } = browser;
    await page.goto(`${gateway.baseUrl}/`);
    // tsx names the functions it compiles through a helper of its own, which the page lacks.
    await page.evaluate('globalThis.__name = (f) => f');
    const result = await page.evaluate(measureInPage, { name: 'glass', seconds });
    if (result.delays.length < 50)
      throw new Error(`only ${result.delays.length} frames read back (${result.unreadable} unreadable)`);
    const delays = result.delays.sort((a, b) => a - b);
    const at = (q: number): number => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]!;
    bench.report('outputs: WHEP glass-to-glass (Chromium canvas → Chromium video), median', at(0.5), 'ms');
    bench.report('outputs: WHEP glass-to-glass, p95', at(0.95), 'ms');
    bench.details.glassToGlass = {
      medianMs: at(0.5),
      p95Ms: at(0.95),
      frames: delays.length,
      unreadable: result.unreadable,
      viewerSize: result.viewerSize,
    };
  } finally {
    await browser.close();
  }
}

/** Runs in the page: publish, watch, read the painted times back. Plain JavaScript (it is sent as text). */
async function measureInPage({
  name,
  seconds,
}: {
  name: string;
  seconds: number;
}): Promise<{ delays: number[]; unreadable: number; viewerSize: string }> {
  const { createSession, watch, SESSION_STATUS, STREAM_STATUS } = await import('/sdk/gateway.js' as string);
  const W = 640;
  const H = 360;
  const BITS = 24;
  const BLOCK = 20;
  const rows = [40, 80];
  const canvas = document.createElement('canvas');
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d')!;
  let running = true;
  let frame = 0;
  const paint = (): void => {
    if (!running) return;
    const stamp = Math.round(performance.now()) % 2 ** BITS;
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, W, H);
    // Something that moves, so the encoder sends what a camera would make it send.
    ctx.fillStyle = '#3060c0';
    ctx.fillRect((frame++ * 7) % W, 200, 80, 80);
    for (const y of rows) {
      for (let bit = 0; bit < BITS; bit++) {
        ctx.fillStyle = (stamp >> bit) & 1 ? '#ffffff' : '#000000';
        ctx.fillRect(40 + bit * BLOCK, y, BLOCK, BLOCK);
      }
    }
    requestAnimationFrame(paint);
  };
  paint();
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const sink = audio.createMediaStreamDestination();
  tone.connect(sink);
  tone.start();
  const media = new MediaStream([...canvas.captureStream(30).getVideoTracks(), ...sink.stream.getAudioTracks()]);

  const session = createSession({ urlServer: location.origin });
  await new Promise<void>((resolve, reject) => {
    session.on(SESSION_STATUS.ESTABLISHED, () => resolve());
    session.on(SESSION_STATUS.FAILED, () => reject(new Error('the SDK session failed')));
  });
  const stream = session.createStream({ name, mediaStream: media });
  await new Promise<void>((resolve, reject) => {
    stream.on(STREAM_STATUS.PUBLISHING, () => resolve());
    stream.on(STREAM_STATUS.FAILED, (e: { info?: string }) => reject(new Error(`the publish failed: ${e.info}`)));
    stream.publish();
  });

  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  document.body.append(video);
  const viewer = await watch({ name, video });
  const reader = document.createElement('canvas');
  reader.width = W;
  reader.height = H;
  const rctx = reader.getContext('2d', { willReadFrequently: true })!;
  const delays: number[] = [];
  let unreadable = 0;
  const read = (y: number, pixels: ImageData): number => {
    let value = 0;
    for (let bit = 0; bit < BITS; bit++) {
      const x = 40 + bit * BLOCK + BLOCK / 2;
      const i = ((y + BLOCK / 2) * W + x) * 4;
      const luma = (pixels.data[i]! + pixels.data[i + 1]! + pixels.data[i + 2]!) / 3;
      if (luma > 128) value |= 1 << bit;
    }
    return value;
  };
  const startedAt = performance.now();
  await new Promise<void>((resolve) => {
    const onFrame = (_now: number, meta: { expectedDisplayTime: number }): void => {
      rctx.drawImage(video, 0, 0, W, H);
      const pixels = rctx.getImageData(0, 0, W, H);
      const [a, b] = rows.map((y) => read(y, pixels));
      const painted = a!;
      // Two rows agreeing: the frame was read right. Warm-up (the first 2 s) is left out.
      if (a !== b) unreadable++;
      else if (performance.now() - startedAt > 2000)
        delays.push((meta.expectedDisplayTime - painted + 2 ** BITS) % 2 ** BITS);
      if (performance.now() - startedAt > seconds * 1000) resolve();
      else video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
  const viewerSize = `${video.videoWidth}x${video.videoHeight}`;
  running = false;
  await viewer.stop();
  stream.stop();
  session.disconnect();
  await audio.close();
  return { delays, unreadable, viewerSize };
}
