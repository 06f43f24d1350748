import t from 'tap';
import { planEncoding } from '../../src/pipeline/encoding.js';
import { encodingSettings } from '../helpers/encoding.js';
import { buildFfmpegArgs, keyframeExpression } from '../../src/pipeline/ffmpeg-args.js';
import { IVF_CLOCK_RATE, ivfFrameHeader, ivfHeader } from '../../src/media/ivf.js';

const settings = encodingSettings;

t.test('H.264 with no size, fps or keyframe request passes through', async (t) => {
  t.same(planEncoding('H264', {}, settings), { video: 'copy' });
  t.same(planEncoding('H264', { width: 0, height: 0, fps: 0, keyFrameInterval: 0 }, settings), { video: 'copy' });
  t.same(planEncoding('H264', { width: 640 }, settings), { video: 'copy' }, 'width alone is ignored');
});

t.test('VP8 and VP9 are transcoded', async (t) => {
  t.match(planEncoding('VP8', {}, settings), { video: 'transcode', reason: /VP8/ });
  t.match(planEncoding('VP9', {}, settings), { video: 'transcode' });
});

t.test('height transcodes keeping the aspect ratio; width counts only without aspect preservation', async (t) => {
  t.match(planEncoding('H264', { height: 360, width: 100 }, settings), { scale: { width: -2, height: 360 } });
  t.match(planEncoding('H264', { height: 361, width: 641 }, { ...settings, keepAspectRatio: false }), {
    scale: { width: 642, height: 362 },
  });
});

t.test('disabled transcoding refuses a request that needs it', async (t) => {
  t.throws(() => planEncoding('VP8', {}, { ...settings, transcodingEnabled: false }), {
    code: 'not_supported',
    message: /VP8/,
  });
  t.throws(() => planEncoding('H264', { height: 480 }, { ...settings, transcodingEnabled: false }), {
    message: /height 480/,
  });
  t.same(
    planEncoding('H264', { audioBitrate: 64 }, { ...settings, transcodingEnabled: false }),
    { video: 'copy', audioBitrateKbps: 64 },
    'audio bitrate alone needs no transcoding',
  );
});

t.test('videoBitrate transcodes at that bitrate; audioBitrate sets the AAC bitrate', async (t) => {
  const plan = planEncoding('H264', { videoBitrate: 800, audioBitrate: 64 }, settings);
  t.match(plan, { video: 'transcode', reason: /videoBitrate 800/, videoBitrateKbps: 800, audioBitrateKbps: 64 });
  const args = buildFfmpegArgs({ videoInput: true, plan, settings, analyzeDurationUs: 1 }).join(' ');
  t.match(args, /-b:v 800k -maxrate 800k -bufsize 1600k/);
  t.match(args, /-b:a 64k/);
});

t.test(
  "IVF, the mixer's and the snapshots' input: a 32-byte header naming the codec, frames timed at 90 kHz",
  async (t) => {
    const header = ivfHeader('H264');
    t.equal(header.length, 32);
    t.equal(header.toString('latin1', 0, 4), 'DKIF');
    t.equal(header.toString('latin1', 8, 12), 'H264');
    t.equal(ivfHeader('VP8').toString('latin1', 8, 12), 'VP80');
    t.equal(ivfHeader('VP9').toString('latin1', 8, 12), 'VP90');
    t.equal(header.readUInt32LE(16), IVF_CLOCK_RATE, 'time base denominator');
    t.equal(header.readUInt32LE(20), 1, 'time base numerator');
    const frame = ivfFrameHeader(1234, 2 ** 33 + 5);
    t.equal(frame.length, 12);
    t.equal(frame.readUInt32LE(0), 1234);
    t.equal(frame.readBigUInt64LE(4), BigInt(2 ** 33 + 5), 'a 64-bit timestamp');
  },
);

const job = { videoInput: true, settings, analyzeDurationUs: 200000 };

t.test("passing video through, ffmpeg only encodes the gateway's PCM to AAC 48 kHz", async (t) => {
  const joined = buildFfmpegArgs({ settings, analyzeDurationUs: 1, plan: { video: 'copy' } }).join(' ');
  t.match(joined, /-f s16le -ar 48000 -ac 2 -i pipe:0 -map 0:a:0 -c:a aac -aac_coder fast -b:a 128k -ar 48000 -ac 2/);
  t.notMatch(joined, /0:v|libx264|pipe:3/);
  const twoloop = buildFfmpegArgs({
    settings: { ...settings, aacCoder: 'twoloop' },
    analyzeDurationUs: 1,
    plan: { video: 'copy' },
  }).join(' ');
  t.match(twoloop, /-c:a aac -aac_coder twoloop -b:a/, 'the coder audio_aac_coder names');
});

t.test(
  'ffmpeg writes FLV to stdout (the audio to pipe:4 when it transcodes) and can reach nothing but its inputs',
  async (t) => {
    const flv = ['-f', 'flv', '-flvflags', 'no_duration_filesize', '-flush_packets', '1'];
    t.same(buildFfmpegArgs({ settings, analyzeDurationUs: 1, plan: { video: 'copy' } }).slice(-7), [...flv, 'pipe:1']);
    const args = buildFfmpegArgs({ ...job, plan: planEncoding('VP8', {}, settings) });
    // Two outputs: the transcoded video alone, then the audio alone (no interleaving wait between them).
    const video = args.indexOf('pipe:1');
    t.same(args.slice(video - 6, video + 1), [...flv, 'pipe:1']);
    t.notOk(args.slice(args.indexOf('-map'), video).includes('0:a:0'), 'the video output carries no audio');
    t.same(args.slice(-7), [...flv, 'pipe:4']);
    t.match(args.slice(video).join(' '), /^pipe:1 -map 0:a:0 -c:a aac/);
    t.same(args.slice(args.indexOf('-protocol_whitelist'), args.indexOf('-protocol_whitelist') + 2), [
      '-protocol_whitelist',
      'file,pipe',
    ]);
    t.equal(args.filter((a) => a === '-protocol_whitelist').length, 1);
    t.notOk(
      args.some((a) => /rtmp/.test(a)),
      'no destination in the arguments',
    );
  },
);

t.test('transcoding reads the video and the audio together, as Matroska from pipe:3: one input', async (t) => {
  const args = buildFfmpegArgs({ ...job, plan: planEncoding('VP8', {}, settings) });
  t.match(args.join(' '), /-f matroska -i pipe:3 -map 0:v:0 .*-map 0:a:0 -c:a aac/);
  t.equal(args.filter((arg) => arg === '-i').length, 1);
  t.notOk(args.includes('pipe:0'), 'nothing read from stdin');
});

t.test('filters run in the thread that decodes and encodes; passing video through there are none', async (t) => {
  const one = ['-filter_threads', '1', '-filter_complex_threads', '1'];
  const global = (args: string[]): string[] =>
    args.slice(args.indexOf('-filter_threads'), args.indexOf('-filter_threads') + 4);
  const transcoding = buildFfmpegArgs({ ...job, plan: planEncoding('H264', { aspect: '9:16' }, settings) });
  t.same(global(transcoding), one);
  t.ok(transcoding.indexOf('-filter_threads') < transcoding.indexOf('-i'), 'global options, before the inputs');
  t.same(
    global(
      buildFfmpegArgs({ still: { path: '/x.h264', fps: 30 }, settings, analyzeDurationUs: 1, plan: { video: 'copy' } }),
    ),
    one,
  );
  t.notOk(buildFfmpegArgs({ settings, analyzeDurationUs: 1, plan: { video: 'copy' } }).includes('-filter_threads'));
});

t.test('transcoding uses libx264 with a 2 s keyframe interval, or the requested one in frames', async (t) => {
  const plan = planEncoding('VP8', {}, settings);
  const joined = buildFfmpegArgs({ ...job, plan }).join(' ');
  t.match(joined, /-c:v libx264 -threads 1 -preset veryfast -tune zerolatency/);
  const slower = buildFfmpegArgs({ ...job, plan, settings: { ...settings, preset: 'medium' } }).join(' ');
  t.match(slower, /-c:v libx264 -preset medium -tune zerolatency/, 'x264 threads itself for a slower preset');
  t.ok(joined.includes(`-force_key_frames ${keyframeExpression(2)}`), 'keyframes forced at most 2 s apart');
  const sized = buildFfmpegArgs({
    ...job,
    plan: planEncoding('H264', { height: 480, fps: 25, keyFrameInterval: 50 }, settings),
  }).join(' ');
  t.match(sized, /-vf scale=-2:480,fps=25/);
  t.match(sized, /-g 50 -keyint_min 50/);
});

t.test(
  'overlays transcode: each image an input after the audio, laid over by one filter graph, on the live picture and on the still',
  async (t) => {
    const overlays = [
      { path: '/media/logo.png', x: 0.8, y: 0.05, width: 0.1, opacity: 0.5 },
      { path: '/media/frame.png', x: 0, y: 0, width: 1, opacity: 1 },
    ];
    const plan = planEncoding('H264', { overlays, height: 360 }, settings);
    t.match(plan, { video: 'transcode', reason: /2 overlays requested/, overlays });
    const args = buildFfmpegArgs({ ...job, plan });
    const joined = args.join(' ');
    t.match(joined, /-i pipe:3 -i \/media\/logo\.png -i \/media\/frame\.png /, 'the images are inputs 1 and 2');
    const graph = args[args.indexOf('-filter_complex') + 1]!;
    t.match(
      graph,
      /^\[0:v\]scale=-2:360\[base\];\[1:v\]format=rgba,colorchannelmixer=aa=0\.5\[image0\];\[image0\]\[base\]scale2ref=/,
      'scaled first, then the first image over it',
    );
    t.match(
      graph,
      /overlay=x=trunc\(main_w\*0\.8\/2\)\*2:y=trunc\(main_h\*0\.05\/2\)\*2/,
      'placed at its fractions of the picture',
    );
    t.match(graph, /\[2:v\].*\[over1\]format=yuv420p\[vout\]$/, 'the second over the first');
    t.equal(args[args.indexOf('-filter_complex') + 3], '[vout]', 'the graph is the video mapped');
    t.notMatch(joined, /-vf /);
    const still = buildFfmpegArgs({
      ...job,
      videoInput: false,
      plan,
      still: { path: '/tmp/still.h264', fps: 25 },
    }).join(' ');
    t.match(still, /-i pipe:0 -i \/media\/logo\.png/, 'on the still picture too');
    t.match(still, /\[0:v\]loop=loop=-1:size=1:start=0,setpts=N\/25\/TB,realtime\[base\]/);
    t.same(planEncoding('H264', {}, settings), { video: 'copy' }, 'no overlays: passed through');
  },
);
