import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test as Tap } from 'tap';
import { keyframeExpression } from '../../src/pipeline/ffmpeg-args.js';
import { keyframeCount, maxKeyframeGap, probe } from '../../kit/probe.js';
import { startProcess, stopProcess } from '../../kit/processes.js';

// A transcoded push has keyframes at most the configured interval apart, whatever the source's
// frame rate and however unevenly its frames arrive (browsers' frames are 0–20 ms late).

async function encode(t: Tap, fps: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyframes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.flv');
  const ffmpeg = startProcess('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=320x240:rate=${fps}`,
    '-t',
    '13',
    '-vf',
    'settb=1/1000,setpts=PTS+mod(N*13\\,21)/1000/TB',
    '-fps_mode',
    'passthrough',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-sc_threshold',
    '0',
    '-force_key_frames',
    keyframeExpression(2),
    '-f',
    'flv',
    file,
  ]);
  t.teardown(() => stopProcess(ffmpeg));
  const code = await new Promise((resolve) => ffmpeg.once('exit', resolve));
  t.equal(code, 0, 'ffmpeg encoded the source');
  return file;
}

for (const fps of [30, 25, 12]) {
  t.test(`${fps} fps with jittered frames: keyframes at most 2 s and at least 1.5 s apart`, async (t) => {
    const rec = await probe(await encode(t, fps));
    const gap = maxKeyframeGap(rec.video);
    t.ok(gap > 0 && gap <= 2, `largest gap ${gap.toFixed(3)} s`);
    const keys = rec.video.filter((p) => p.flags.startsWith('K')).map((p) => Number(p.pts_time));
    const smallest = Math.min(...keys.slice(1).map((k, i) => k - keys[i]!));
    t.ok(keyframeCount(rec.video) >= 7, `${keyframeCount(rec.video)} keyframes in 13 s`);
    t.ok(smallest >= 1.5, `smallest gap ${smallest.toFixed(3)} s: not forced more often than needed`);
  });
}
