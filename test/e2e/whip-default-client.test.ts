import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { whipPublish } from '../helpers/e2e.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';

const run = promisify(execFile);
const logLines: string[] = [];
const stage = useStage([{ log_level: 'info' }, logLines]);

/** Every decoded video frame's size and time in a recording. */
async function frameSizes(file: string): Promise<{ time: number; size: string }[]> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=width,height,pts_time', '-of', 'csv=p=0', file],
    {
      maxBuffer: 64 << 20,
    },
  );
  return stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [time, width, height] = line.split(',');
      return { time: Number(time), size: `${width}x${height}` };
    });
}

/** The browser's video sender: what it sends and why it is limited. */
async function senderState(): Promise<string> {
  return stage.browser.page.evaluate(async () => {
    let out = '';
    (await (window as any).pc.getStats()).forEach((s: any) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video')
        out = `${s.frameWidth}x${s.frameHeight} target ${Math.round((s.targetBitrate ?? 0) / 1000)} kb/s, limited by ${s.qualityLimitationReason}`;
    });
    return out;
  });
}

t.test(
  'a default RTCPeerConnection over WHIP: every change of the picture size that reaches the RTMP server is counted in find and logged',
  async (t) => {
    await stage.browser.page.goto(stage.gw.baseUrl + '/health');
    const whip = await whipPublish(stage.browser.page, stage.gw.baseUrl + '/whip/plain', false);
    t.equal(whip.status, 201);
    await waitFor('the WebRTC publish', async () => stage.gw.publishers.get('plain')?.state === 'publishing', 10000);
    const res = await stage.gw.post('/rest-api/push/startup', { streamName: 'plain', rtmpUrl: stage.nginx.url() });
    t.equal(res.status, 200, JSON.stringify(res.body));
    for (let second = 0; second < 10; second++) {
      t.comment(`${second} s: ${await senderState()}`);
      await sleep(1000);
    }
    const [found] = (await stage.gw.post('/rest-api/push/find', { streamName: 'plain' })).body;
    await stage.gw.post('/rest-api/push/terminate', { mediaSessionId: res.body.mediaSessionId });
    await waitFor(
      'the RTMP stream to end',
      async () => !(await stage.nginx.streams()).some((s) => s.name === 'rtmp_plain'),
      5000,
    );

    const frames = await frameSizes(stage.nginx.recording('rtmp_plain'));
    const changes = frames.filter((f, i) => i > 0 && f.size !== frames[i - 1]!.size);
    t.comment(`recorded sizes: ${[frames[0]!, ...changes].map((f) => `${f.size} at ${f.time} s`).join(', ')}`);
    t.ok(frames.length > 150, `${frames.length} frames recorded`);
    t.equal(
      found.resolutionChanges,
      changes.length,
      `find counts the ${changes.length} size changes the server received`,
    );
    t.equal(`${found.width}x${found.height}`, frames.at(-1)!.size, 'and shows the size being sent');
    const logged = logLines.filter((line) => line.includes('the picture size sent changed mid-stream'));
    t.equal(logged.length, changes.length, 'each change is logged');
    for (const [i, line] of logged.entries())
      t.match(JSON.parse(line), { mediaSessionId: res.body.mediaSessionId, to: changes[i]!.size });
  },
);
