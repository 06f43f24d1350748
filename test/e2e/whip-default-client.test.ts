import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { whipPublish } from '../helpers/e2e.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';

const run = promisify(execFile);
const stage = useStage([process.env.BR ? { webrtc_video_bitrate_kbps: Number(process.env.BR) } : {}], process.env.CHR_LOG ? ['--enable-logging', '--log-file=/tmp/chr.log', '--v=1', '--vmodule=*/webrtc/video/*=1,*/webrtc/call/*=1,*/webrtc/modules/congestion_controller/*=1,*/webrtc/media/*=1'] : []);

/** Every decoded video frame's size and time in a recording. */
async function frameSizes(file: string): Promise<{ time: number; size: string }[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width,height,pts_time', '-of', 'csv=p=0', file], { maxBuffer: 64 << 20 });
  return stdout.trim().split('\n').map((line) => {
    const [time, width, height] = line.split(',');
    return { time: Number(time), size: `${width}x${height}` };
  });
}

t.test('a default RTCPeerConnection publishing over WHIP arrives at 1280x720 from its first second', async (t) => {
  await stage.browser.page.goto(stage.gw.baseUrl + '/health');
  const whip = await whipPublish(stage.browser.page, stage.gw.baseUrl + '/whip/plain', false);
  t.equal(whip.status, 201);
  await waitFor('the WebRTC publish', async () => stage.gw.publishers.get('plain')?.state === 'publishing', 10000);
  const res = await stage.gw.post('/rest-api/push/startup', { streamName: 'plain', rtmpUrl: stage.nginx.url() });
  t.equal(res.status, 200, JSON.stringify(res.body));
  for (let i = 0; i < 20; i++) {
    const st = await stage.browser.page.evaluate(async () => {
      let out = '';
      (await (window as any).pc.getStats()).forEach((s: any) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') out = `${s.frameWidth}x${s.frameHeight} target=${s.targetBitrate} q=${s.qualityLimitationReason} ${JSON.stringify(s.qualityLimitationDurations)} enc=${s.encoderImplementation}`;
      });
      return out;
    });
    t.comment(`${i * 500} ms: ${st}`);
    await sleep(500);
  }
  const found = (await stage.gw.post('/rest-api/push/find', { mediaSessionId: res.body.mediaSessionId })).body[0];
  await stage.gw.post('/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId });
  await waitFor('the RTMP stream to end', async () => !(await stage.nginx.streams()).some((s) => s.name === 'rtmp_plain'), 5000);
  const frames = await frameSizes(stage.nginx.recording('rtmp_plain'));
  const sizes = [...new Set(frames.map((f) => f.size))];
  t.comment(`sizes: ${frames.filter((f, i) => i === 0 || f.size !== frames[i - 1]!.size).map((f) => `${f.size} at ${f.time}s`).join(', ')}`);
  t.ok(frames.length > 200, `${frames.length} frames recorded`);
  t.same(sizes, ['1280x720'], 'every frame is 1280x720');
  t.match(found, { width: 1280, height: 720, resolutionChanges: 0 });
});
