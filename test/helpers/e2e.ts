import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { Page } from 'playwright-core';
import { colourAt, decodePicture, looksLike } from '../../kit/pictures.js';
import { keyframeCount, maxKeyframeGap, nonMonotonic, probe, recordedFps } from '../../kit/probe.js';
import { pidsMatching, sleep, waitFor } from '../../kit/processes.js';
import type { NginxRtmp } from '../../kit/rtmp-server.js';
import type { TestGateway } from './gateway.js';
import { PUSH_FFMPEG } from './pushes.js';

const ARTIFACTS = join(import.meta.dirname ?? '.', '..', '..', '.test-output');

/** Frames the page's video sender has sent, and when (browser clock, ms). */
async function framesSent(page: Page, statsExpression: string): Promise<{ frames: number; at: number }> {
  return page.evaluate(async (expr) => {
    const report: RTCStatsReport = await (0, eval)(expr);
    let frames = 0;
    report.forEach((s: any) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') frames = s.framesSent;
    });
    return { frames, at: performance.now() };
  }, statsExpression);
}

/**
 * Pushes for `seconds`, terminates the push, then checks what nginx-rtmp recorded: H.264 +
 * AAC at 1280x720, keyframes at most 2 s apart, at least 90 % of the browser's frame rate,
 * strictly increasing timestamps; and that the RTMP stream ended and no ffmpeg is left.
 */
export async function pushAndVerify(
  t: Test,
  gw: TestGateway,
  nginx: NginxRtmp,
  page: Page,
  opts: { mediaSessionId: string; rtmpStream: string; statsExpression: string; seconds: number },
): Promise<void> {
  const before = await framesSent(page, opts.statsExpression);
  await sleep(opts.seconds * 1000);
  const after = await framesSent(page, opts.statsExpression);
  const browserFps = ((after.frames - before.frames) * 1000) / (after.at - before.at);

  const listed = await gw.post('/rest-api/push/find', {
    streamName: gw.pushService.get(opts.mediaSessionId).publisher.name,
  });
  t.equal(listed.status, 200);
  t.match(listed.body[0], { mediaSessionId: opts.mediaSessionId, state: 'running', width: 1280, height: 720 });
  const ffmpegPids = await pidsMatching(PUSH_FFMPEG);

  const terminated = await gw.post('/rest-api/push/terminate', { mediaSessionId: opts.mediaSessionId });
  t.equal(terminated.status, 200, 'terminate answers 200');
  await waitFor(
    'the RTMP stream to end',
    async () => !(await nginx.streams()).some((s) => s.name === opts.rtmpStream),
    5000,
  );
  t.pass('the RTMP server no longer has the stream');
  t.equal(gw.ffmpeg.count, 0, 'the gateway tracks no ffmpeg');
  t.equal(ffmpegPids.length, 1, 'one ffmpeg was running before terminate');
  t.same(await pidsMatching(PUSH_FFMPEG), [], 'no ffmpeg is left');
  t.equal(
    (await gw.post('/rest-api/push/terminate', { mediaSessionId: opts.mediaSessionId })).status,
    404,
    'a second terminate is 404',
  );

  // Kept for inspection after the run: .test-output/ is ignored by git.
  await mkdir(ARTIFACTS, { recursive: true });
  await copyFile(nginx.recording(opts.rtmpStream), join(ARTIFACTS, `${opts.rtmpStream}.flv`));
  const rec = await probe(nginx.recording(opts.rtmpStream));
  const video = rec.streams.find((s) => s.codec_type === 'video');
  const audio = rec.streams.find((s) => s.codec_type === 'audio');
  t.equal(video?.codec_name, 'h264');
  t.equal(audio?.codec_name, 'aac');
  t.equal(video?.width, 1280);
  t.equal(video?.height, 720);
  const gap = maxKeyframeGap(rec.video);
  t.ok(keyframeCount(rec.video) >= Math.floor(opts.seconds / 2), `keyframes: ${keyframeCount(rec.video)}`);
  t.ok(gap > 0 && gap <= 2.0, `largest keyframe gap ${gap.toFixed(3)} s is at most 2 s`);
  const fps = recordedFps(rec.video);
  t.ok(
    fps >= 0.9 * browserFps,
    `recorded ${fps.toFixed(2)} fps vs ${browserFps.toFixed(2)} sent by the browser (>= 90 %)`,
  );
  t.same(nonMonotonic(rec.video), [], 'video timestamps strictly increase');
  t.same(nonMonotonic(rec.audio), [], 'audio timestamps strictly increase');
  t.comment(
    `recorded ${rec.video.length} video frames, ${rec.audio.length} audio packets, ${fps.toFixed(2)} fps, browser ${browserFps.toFixed(2)} fps, max GOP ${gap.toFixed(3)} s`,
  );
}

export interface WhipResult {
  status: number;
  location: string | null;
  contentType: string | null;
  offer: string;
  answer: string;
}

/**
 * A plain WHIP client in the page: no SDK, no codec preference, candidates only in the SDP. With
 * `keepResolution` its video sender asks for `maintain-resolution`; without, it is a default
 * `RTCPeerConnection` as third-party WHIP clients use it.
 */
export async function whipPublish(
  page: Page,
  url: string,
  keepResolution = true,
  simulcast = false,
  captionsChannel = false,
): Promise<WhipResult> {
  return page.evaluate(
    async ([whipUrl, keep, layers, channel]) => {
      const media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
      const pc = new RTCPeerConnection({ iceServers: [] });
      (window as any).pc = pc;
      // The gateway's captions channel: agreed beforehand (negotiated, id 0), as its engine takes no in-band opening.
      if (channel) (window as any).captions = pc.createDataChannel('captions', { negotiated: true, id: 0 });
      // Simulcast: three layers, lowest first, as the gateway takes them.
      const sendEncodings = [
        { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 200_000 },
        { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 700_000 },
        { rid: 'h', maxBitrate: 2_500_000 },
      ];
      for (const track of media.getTracks())
        pc.addTransceiver(track, {
          direction: 'sendonly',
          ...(layers && track.kind === 'video' ? { sendEncodings } : {}),
        });
      for (const sender of pc.getSenders()) {
        if (sender.track?.kind !== 'video' || !keep) continue;
        const parameters: any = sender.getParameters();
        parameters.degradationPreference = 'maintain-resolution';
        await sender.setParameters(parameters);
      }
      await pc.setLocalDescription(await pc.createOffer());
      const response = await fetch(whipUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: pc.localDescription!.sdp,
      });
      const answer = await response.text();
      if (response.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      return {
        status: response.status,
        location: response.headers.get('location'),
        contentType: response.headers.get('content-type'),
        offer: pc.localDescription!.sdp,
        answer,
      };
    },
    [url, keepResolution, simulcast, captionsChannel] as const,
  );
}

/**
 * Waits until snapshots of the mixer stream `mixer` (side by side) show the browser's camera on the
 * left (any picture, but neither the placeholder nor the black of a slot left empty) and red on the right.
 */
export async function waitForBrowserBesideRed(gw: TestGateway, mixer: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mixer-'));
  let seen = '';
  try {
    await waitFor(
      "the browser's picture on the left, red on the right",
      async () => {
        const jpeg = await gw.plane.snapshot(mixer).catch(() => undefined);
        if (!jpeg) return false;
        const file = join(dir, `${Date.now()}.jpg`);
        await writeFile(file, jpeg);
        const picture = await decodePicture(file);
        const left = colourAt(picture, 0.25, 0.3);
        seen = JSON.stringify([left, colourAt(picture, 0.75, 0.5)]);
        return (
          !looksLike(left, '#303030', 12) &&
          !looksLike(left, '#000000', 12) &&
          looksLike(colourAt(picture, 0.75, 0.5), '#ff0000')
        );
      },
      20_000,
      250,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen ${seen}`, { cause: error });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
