import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { colourAt, looksLike, type Picture } from '../../kit/pictures.js';
import { planEncoding } from '../../src/pipeline/encoding.js';
import { encodingSettings } from '../helpers/encoding.js';
import { buildFfmpegArgs } from '../../src/pipeline/ffmpeg-args.js';
import { planShape, shapeGraph, type PictureShape } from '../../src/pipeline/shape.js';
import { startupSchema } from '../../src/pushes/requests.js';
import { parseBody } from '../../src/core/validation.js';

const run = promisify(execFile);

const settings = encodingSettings;

/** 1280x720 in three upright bands: red, green (the centre 428 pixels), blue. */
const BANDS =
  'color=c=0xff0000:s=1280x720:d=1,drawbox=x=426:y=0:w=428:h=720:color=0x00ff00:t=fill,drawbox=x=854:y=0:w=426:h=720:color=0x0000ff:t=fill';

/** One frame of the bands made into `shape` by ffmpeg, with the filters the gateway gives it. */
async function shaped(shape: PictureShape, source = BANDS): Promise<Picture> {
  const graph = shapeGraph(shape, '0:v', 'out').join(';');
  const { stdout } = await run(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      source,
      '-filter_complex',
      graph,
      '-map',
      '[out]',
      '-frames:v',
      '1',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  if (stdout.length !== shape.width * shape.height * 3)
    throw new Error(`ffmpeg made ${stdout.length} bytes, not one ${shape.width}x${shape.height} picture`);
  return { width: shape.width, height: shape.height, rgb: stdout };
}

const startup = (fields: Record<string, unknown>): unknown =>
  parseBody(startupSchema, { streamName: 'cam', rtmpUrl: 'rtmp://127.0.0.1/live/x', ...fields });

t.test('a shape is sized by its shorter side, 720, or by the height asked; the crop sits where asked', async (t) => {
  t.match(planShape({ aspect: '9:16' }), { width: 720, height: 1280, crop: 0.5 });
  t.match(planShape({ aspect: '1:1' }), { width: 720, height: 720 });
  t.match(planShape({ aspect: '4:5' }), { width: 720, height: 900 });
  t.match(planShape({ aspect: '16:9' }), { width: 1280, height: 720 });
  t.match(planShape({ aspect: '9:16', height: 1920 }), { width: 1080, height: 1920 });
  t.match(planShape({ aspect: '9:16', height: 853 }), { width: 480, height: 854 }, 'even sizes');
  t.match(planShape({ aspect: '9:16', crop: 'left' }), { crop: 0 });
  t.match(planShape({ aspect: '9:16', crop: 'right' }), { crop: 1 });
  t.match(planShape({ aspect: '9:16', crop: 0.25 }), { crop: 0.25 });
  t.match(planShape({ aspect: '9:16', fit: 'blur' }), { fill: 'blur' });
  t.equal(planShape({ height: 720 }), undefined);
});

t.test('an aspect transcodes to its size; height alone still scales as Web Call Server does', async (t) => {
  const plan = planEncoding('H264', { aspect: '9:16' }, settings);
  t.match(plan, { video: 'transcode', reason: /aspect 9:16 requested/, shape: { width: 720, height: 1280 } });
  t.notOk('scale' in plan, 'the shape sets the size');
  const args = buildFfmpegArgs({ videoInput: true, plan, settings, analyzeDurationUs: 1 });
  const graph = args[args.indexOf('-filter_complex') + 1]!;
  t.match(graph, /^\[0:v\]crop=.*scale=720:1280,setsar=1\[vout\]$/);
  t.equal(args[args.indexOf('-map') + 1], '[vout]');
  const overlaid = planEncoding(
    'H264',
    { aspect: '1:1', fps: 25, overlays: [{ path: '/logo.png', x: 0.1, y: 0.1, width: 0.1, opacity: 1 }] },
    settings,
  );
  const both = buildFfmpegArgs({ videoInput: true, plan: overlaid, settings, analyzeDurationUs: 1 });
  t.match(
    both[both.indexOf('-filter_complex') + 1],
    /^\[0:v\]fps=25\[base\];\[base\]crop=.*scale=720:720,setsar=1\[shaped\];\[1:v\]format=rgba.*\[shaped\].*\[vout\]$/,
    'the frame rate, the shape, then the images over it',
  );
  const still = buildFfmpegArgs({ still: { path: '/x.h264', fps: 30 }, plan, settings, analyzeDurationUs: 1 });
  t.notOk(still.join(' ').includes('crop='), 'the still picture is what was sent: already of that shape');
});

t.test('crop: the centre column of the bands, their left or their right; the shape filled by ffmpeg', async (t) => {
  const centre = await shaped(planShape({ aspect: '9:16' })!);
  for (const x of [0.02, 0.5, 0.98])
    t.ok(
      looksLike(colourAt(centre, x, 0.5), '#00ff00'),
      `green across the centre crop at ${x}: ${colourAt(centre, x, 0.5).join()}`,
    );
  const left = await shaped(planShape({ aspect: '9:16', crop: 'left' })!);
  t.ok(looksLike(colourAt(left, 0.5, 0.5), '#ff0000'), 'red in the left crop');
  const right = await shaped(planShape({ aspect: '9:16', crop: 'right' })!);
  t.ok(looksLike(colourAt(right, 0.5, 0.5), '#0000ff'), 'blue in the right crop');
  // A portrait source cropped to a landscape shape: the same fraction places the window down its height.
  const tall = 'color=c=0xff0000:s=720x1280:d=1,drawbox=x=0:y=640:w=720:h=640:color=0x0000ff:t=fill';
  const bottom = await shaped(planShape({ aspect: '16:9', crop: 1 })!, tall);
  t.ok(looksLike(colourAt(bottom, 0.5, 0.5), '#0000ff'), 'the bottom of a portrait source');
});

t.test('fit: the whole source in the middle, on a colour or on a blurred copy of itself', async (t) => {
  const black = await shaped(planShape({ aspect: '9:16', fit: '#000000' })!);
  t.ok(looksLike(colourAt(black, 0.1, 0.5), '#ff0000'), 'red at the left of the middle row');
  t.ok(looksLike(colourAt(black, 0.5, 0.5), '#00ff00'), 'green at its centre');
  t.ok(looksLike(colourAt(black, 0.9, 0.5), '#0000ff'), 'blue at its right');
  t.ok(looksLike(colourAt(black, 0.5, 0.1), '#000000'), 'the colour above');
  const blur = await shaped(planShape({ aspect: '9:16', fit: 'blur' })!);
  t.ok(
    looksLike(colourAt(blur, 0.1, 0.5), '#ff0000') && looksLike(colourAt(blur, 0.9, 0.5), '#0000ff'),
    'the whole source across the middle',
  );
  const above = colourAt(blur, 0.5, 0.1);
  t.ok(
    above[1] > 100 && !looksLike(above, '#000000'),
    `the source's blurred centre above it, not a colour: ${above.join()}`,
  );
});

t.test('the shape fields refused naming the field', async (t) => {
  const refused = (fields: Record<string, unknown>, field: string, message: RegExp): void => {
    t.throws(
      () => startup(fields),
      { code: 'invalid_request', field, message },
      `${JSON.stringify(fields)} names ${field}`,
    );
  };
  refused({ aspect: '9/16' }, 'aspect', /W:H/);
  refused({ aspect: '0:16' }, 'aspect', /W:H/);
  refused({ aspect: '1:9' }, 'aspect', /between 1:4 and 4:1/);
  refused({ crop: 'center' }, 'crop', /only with aspect/);
  refused({ fit: 'blur' }, 'fit', /only with aspect/);
  refused({ aspect: '9:16', crop: 'middle' }, 'crop', /center, left, right, or a fraction/);
  refused({ aspect: '9:16', crop: 1.5 }, 'crop', /fraction/);
  refused({ aspect: '9:16', fit: 'red' }, 'fit', /blur, or a #rrggbb colour/);
  refused({ aspect: '9:16', crop: 'left', fit: 'blur' }, 'fit', /not both/);
  refused({ aspect: '9:16', width: 720 }, 'width', /give height alone/);
  refused({ aspect: '4:1', height: 2000 }, 'height', /8000 wide/);
  t.match(
    startup({ aspect: '9:16', crop: '0.3', height: '1280' }),
    { aspect: '9:16', crop: 0.3, height: 1280 },
    'numbers as strings, as Web Call Server writes them',
  );
});
