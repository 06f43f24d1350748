import t from 'tap';
import { maxKeyframeGap, nonMonotonic, probe } from '../../kit/probe.js';
import { waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';

/**
 * A transcoded push follows its source up: Chromium publishes VP8 from a canvas painted at an
 * uneven 20 fps (40-60 ms apart) at 960x540, then at 1280x720, as a browser whose bandwidth
 * estimate grew does. The destination gets 960x540 and then 1280x720 in one RTMP session (the same
 * client at nginx-rtmp, no reconnect), with no break in the video, and onMetaData gives the frame
 * rate sent (as the recording shows it, not ffmpeg's guess from the first timestamps).
 */
const stage = useStage([{ webrtc_video_codecs: ['VP8'] }]);

/** Runs in the page (a string: the test's transpiler adds helpers the page lacks to functions it compiles). */
const PUBLISH_CANVAS = `(async (whipUrl) => {
  const canvas = document.createElement('canvas');
  canvas.width = 960;
  canvas.height = 540;
  document.body.append(canvas);
  const g = canvas.getContext('2d');
  const video = canvas.captureStream(0).getVideoTracks()[0];
  video.contentHint = 'detail';
  let n = 0;
  const paint = () => {
    g.fillStyle = 'hsl(' + ((n * 7) % 360) + ', 60%, 45%)';
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = '#fff';
    g.font = '96px sans-serif';
    g.fillText(String(n++) + ' ' + canvas.width + 'x' + canvas.height, 40, 160);
    video.requestFrame();
    setTimeout(paint, 40 + Math.random() * 20);
  };
  paint();
  window.grow = () => { canvas.width = 1280; canvas.height = 720; };
  const audio = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0];
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.addTransceiver(video, { direction: 'sendonly' });
  pc.addTransceiver(audio, { direction: 'sendonly' });
  const sender = pc.getSenders().find((s) => s.track === video);
  const parameters = sender.getParameters();
  parameters.degradationPreference = 'maintain-resolution';
  await sender.setParameters(parameters);
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(whipUrl, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await response.text();
  if (response.status !== 201) throw new Error('WHIP answered ' + response.status + ': ' + answer);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
})`;

t.test(
  'a transcoded push moves up to the size its source grows to, in one RTMP session, without a break',
  async (t) => {
    const { gw, nginx, browser } = stage;
    await browser.page.goto(gw.baseUrl + '/health');
    await browser.page.evaluate(`${PUBLISH_CANVAS}(${JSON.stringify(gw.baseUrl + '/whip/grow')})`);
    // The push starts once the frame rate is measured over its whole window (60 frames, 3 s here):
    // over the first frames it is what the browser sent while starting, which on a busy machine is
    // fewer frames (15 a second against 19 overall in one run) and no measure of the stream.
    await waitFor(
      'a 960x540 keyframe and 60 frames',
      async () => {
        const [stream] = (await gw.post('/rest-api/stream/find', { name: 'grow' })).body ?? [];
        return stream?.video?.width === 960 && stream.video.frameRate > 0 && stream.frames >= 60;
      },
      20_000,
    );
    const started = await gw.post('/rest-api/push/startup', {
      streamName: 'grow',
      rtmpUrl: `${nginx.url()}/grow`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(started.status, 200, JSON.stringify(started.body));
    t.match(started.body, { transcoding: true, width: 960, height: 540 });
    const first = await waitFor(
      '960x540 at the server',
      async () => (await nginx.streams()).find((s) => s.name === 'grow' && s.width === 960),
      15_000,
    );

    await browser.page.evaluate('window.grow()');
    const grown = await waitFor(
      '1280x720 at the server',
      async () => (await nginx.streams()).find((s) => s.name === 'grow' && s.width === 1280 && s.height === 720),
      30_000,
    );
    t.equal(grown.clientId, first.clientId, 'the same RTMP session');
    const [push] = (await gw.post('/rest-api/push/find', { streamName: 'grow' })).body;
    t.match(
      push,
      { width: 1280, height: 720, state: 'running', counters: { reconnects: 0 } },
      'find gives the size sent; no reconnect',
    );
    t.ok(push.resolutionChanges >= 1, `the change is counted (${push.resolutionChanges})`);
    // Some seconds at the new size, then the push ends and its recording is read.
    const sentAtGrowth = push.counters.frames;
    await waitFor(
      'three seconds of frames at the new size',
      async () =>
        (await gw.post('/rest-api/push/find', { streamName: 'grow' })).body[0].counters.frames > sentAtGrowth + 55,
      15_000,
    );
    await gw.post('/rest-api/push/terminate', { mediaSessionId: push.mediaSessionId });
    await waitFor(
      'the stream gone at the server',
      async () => !(await nginx.streams()).some((s) => s.name === 'grow'),
      10_000,
    );

    const recorded = await probe(nginx.recording('grow'));
    const times = recorded.video.map((p) => Number(p.pts_time));
    // What was sent, from the recording: the page paints about 20 frames a second, fewer on a busy machine.
    const sentFps = (times.length - 1) / (times.at(-1)! - times[0]!);
    // A break is a switch that is not made before the old pipeline goes: frames missing for as long
    // as a new ffmpeg takes to start. The page's own painting, on a busy machine, skips a few frames
    // now and then: six frame times of the rate sent (300 ms at 20 a second) are allowed.
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    t.ok(
      gap < 6 / sentFps,
      `no break in the video: the longest gap between frames is ${Math.round(gap * 1000)} ms ` +
        `(${(gap * sentFps).toFixed(1)} frame times at ${sentFps.toFixed(1)} a second)`,
    );
    t.same(nonMonotonic(recorded.video), [], 'timestamps only go up across the change');
    for (const [when, said] of [
      ['at first', first.frameRate],
      ['after the change', grown.frameRate],
    ] as const) {
      t.ok(
        Math.abs(said - sentFps) <= 0.2 * sentFps,
        `onMetaData ${when} gives the frame rate sent: ${said} for ${sentFps.toFixed(1)} sent`,
      );
    }
    t.ok(maxKeyframeGap(recorded.video) <= 2.1, `keyframes at most 2 s apart (${maxKeyframeGap(recorded.video)} s)`);
  },
);
