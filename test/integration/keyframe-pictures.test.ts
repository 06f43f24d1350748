import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { colourAt, decodePicture, looksLike } from '../../kit/pictures.js';
import { FfmpegSupervisor } from '../../src/ffmpeg/supervisor.js';
import type { VideoFrame } from '../../src/media/sinks.js';
import { KeyframePictures } from '../../src/viewers/snapshot.js';
import { mpjpegParts } from '../../src/viewers/keyframe-jpegs.js';

// Keyframes made by a real encoder, of one colour each, decoded by the real ffmpeg: several asked
// for together are one ffmpeg, each picture the right one, and a broken one costs no other its picture.

const run = promisify(execFile);
const [RED, GREEN, BLUE] = ['#ff0000', '#00ff00', '#0000ff'];
const supervisor = new FfmpegSupervisor();
t.teardown(() => supervisor.killAll());

let dir = '';
t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyframe-pictures-'));
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** An H.264 keyframe (Annex B, with its SPS and PPS) of one colour, as a publisher's frame. */
async function keyframe(colour: string, width = 320, height = 240): Promise<VideoFrame> {
  const { stdout } = await run(
    'ffmpeg',
    [
      ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `color=${colour}:size=${width}x${height}`],
      ...['-frames:v', '1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-f', 'h264', 'pipe:1'],
    ],
    { encoding: 'buffer' },
  );
  return frame(stdout, { width, height });
}

function frame(bitstream: Buffer, size?: { width: number; height: number }): VideoFrame {
  return {
    codec: 'H264',
    timestamp: 0,
    captureMs: 0,
    key: true,
    packets: 1,
    bytes: bitstream.length,
    ...(size ? { size } : {}),
    bitstream: () => bitstream,
  };
}

/** Every ffmpeg the pictures start, counted. */
function counted(onSpawn?: () => void): { pictures: KeyframePictures; started: () => number } {
  let started = 0;
  const spawn = supervisor.spawn.bind(supervisor);
  const counting = Object.create(supervisor) as FfmpegSupervisor;
  counting.spawn = (...args: Parameters<typeof spawn>) => {
    started++;
    const child = spawn(...args);
    onSpawn?.();
    return child;
  };
  return { pictures: new KeyframePictures(counting, 'ffmpeg'), started: () => started };
}

async function colourOf(jpeg: Buffer, name: string): Promise<ReturnType<typeof colourAt>> {
  const file = join(dir, `${name}.jpg`);
  await writeFile(file, jpeg);
  return colourAt(await decodePicture(file), 0.5, 0.5);
}

t.test('keyframes asked for together: one ffmpeg, each picture its own', async (t) => {
  const colours = [RED, GREEN, BLUE, '#ffff00'];
  const frames = await Promise.all(colours.map((c) => keyframe(c)));
  const { pictures, started } = counted();
  const jpegs = await Promise.all(frames.map((f) => pictures.jpeg(f)));
  t.equal(started(), 1, 'one ffmpeg for four keyframes');
  for (const [i, colour] of colours.entries()) {
    const centre = await colourOf(jpegs[i]!, colour);
    t.ok(looksLike(centre, colour), `picture ${i} is ${colour}: ${centre.join(',')}`);
  }
  t.equal(await pictures.jpeg(frames[0]!), jpegs[0], 'asked again: the same picture, nothing decoded');
  t.equal(started(), 1);
});

t.test('keyframes of two sizes: one ffmpeg for each size, each at its own size', async (t) => {
  const frames = await Promise.all([keyframe(RED, 320, 240), keyframe(BLUE, 640, 360), keyframe(GREEN)]);
  const { pictures, started } = counted();
  const jpegs = await Promise.all(frames.map((f) => pictures.jpeg(f)));
  t.equal(started(), 2);
  const decoded = await Promise.all(
    jpegs.map(async (jpeg, i) => {
      await writeFile(join(dir, `size-${i}.jpg`), jpeg);
      return decodePicture(join(dir, `size-${i}.jpg`));
    }),
  );
  t.same(
    decoded.map((p) => [p.width, p.height]),
    [
      [320, 240],
      [640, 360],
      [320, 240],
    ],
  );
  t.ok(looksLike(colourAt(decoded[1]!, 0.5, 0.5), BLUE), 'the larger one is blue');
  t.ok(looksLike(colourAt(decoded[2]!, 0.5, 0.5), GREEN), 'the third is green');
});

t.test(
  'at most a width: a wider picture made smaller in proportion, a narrower one kept, each width its own',
  async (t) => {
    const [wide, narrow] = await Promise.all([keyframe(BLUE, 640, 360), keyframe(RED, 160, 120)]);
    const { pictures, started } = counted();
    const [small, kept, full] = await Promise.all([
      pictures.jpeg(wide, 320),
      pictures.jpeg(narrow, 320),
      pictures.jpeg(wide),
    ]);
    const sizes = await Promise.all(
      [small!, kept!, full!].map(async (jpeg, i) => {
        await writeFile(join(dir, `width-${i}.jpg`), jpeg);
        const picture = await decodePicture(join(dir, `width-${i}.jpg`));
        return [picture.width, picture.height];
      }),
    );
    t.same(sizes, [
      [320, 180],
      [160, 120],
      [640, 360],
    ]);
    t.equal(started(), 3, 'one ffmpeg per size and width');
    t.equal(await pictures.jpeg(wide, 320), small, 'each width kept for the keyframe');
    t.equal(started(), 3);
  },
);

t.test('a broken keyframe among good ones: the others get their pictures, it alone fails', async (t) => {
  const good = await Promise.all([keyframe(RED), keyframe(BLUE)]);
  const broken = frame(Buffer.from([0, 0, 0, 1, 0x65, 1, 2, 3]), { width: 320, height: 240 });
  const { pictures, started } = counted();
  const answers = await Promise.allSettled([good[0]!, broken, good[1]!].map((f) => pictures.jpeg(f)));
  t.match(answers[1], { status: 'rejected', reason: { code: 'internal' } }, 'the broken one fails');
  t.equal(answers[0]!.status, 'fulfilled');
  t.equal(answers[2]!.status, 'fulfilled');
  const [red, blue] = [answers[0], answers[2]].map((a) => (a as PromiseFulfilledResult<Buffer>).value);
  t.ok(looksLike(await colourOf(red!, 'red-alone'), RED), 'red is red');
  t.ok(looksLike(await colourOf(blue!, 'blue-alone'), BLUE), 'blue is blue');
  t.equal(started(), 4, 'the batch, then each alone');
  // The failure is not kept: asked again, it is decoded again (and fails again).
  await t.rejects(pictures.jpeg(broken));
  t.equal(started(), 5);
});

t.test('a batch stopped (the gateway closing) fails every keyframe of it, none tried again alone', async (t) => {
  const frames = await Promise.all([RED, GREEN, BLUE].map((c) => keyframe(c, 1280, 720)));
  // Killed as it starts, long before it could have decoded anything.
  const { pictures, started } = counted(() => supervisor.killAll());
  const settled = await Promise.allSettled(frames.map((f) => pictures.jpeg(f)));
  t.ok(
    settled.every((a) => a.status === 'rejected'),
    'all three fail',
  );
  t.equal(started(), 1, 'no ffmpeg started after');
});

t.test('keyframes asked for while one ffmpeg runs are decoded together by the next', async (t) => {
  const frames = await Promise.all([RED, GREEN, BLUE].map((c) => keyframe(c)));
  const { pictures, started } = counted();
  const first = pictures.jpeg(frames[0]!);
  await new Promise((resolve) => setTimeout(resolve, 50)); // past the gathering: the first runs alone
  const rest = frames.slice(1).map((f) => pictures.jpeg(f));
  await Promise.all([first, ...rest]);
  t.equal(started(), 2, 'the first alone, the two that came meanwhile together');
  t.ok(looksLike(await colourOf(await rest[1]!, 'late-blue'), BLUE), 'the last is blue');
});

t.test('multipart JPEG: each part by its length; a part cut short or not a JPEG ends the list', async (t) => {
  const jpeg = (n: number): Buffer =>
    Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(n, n), Buffer.from([0xff, 0xd9])]);
  const part = (body: Buffer): Buffer =>
    Buffer.concat([
      Buffer.from(`--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: ${body.length}\r\n\r\n`),
      body,
      Buffer.from('\r\n'),
    ]);
  const whole = Buffer.concat([part(jpeg(10)), part(jpeg(20)), Buffer.from('--ffmpeg--\r\n')]);
  t.same(mpjpegParts(whole), [jpeg(10), jpeg(20)]);
  t.same(mpjpegParts(whole.subarray(0, whole.length - 30)), [jpeg(10)], 'the second cut short');
  t.same(mpjpegParts(Buffer.concat([part(Buffer.from('not a picture')), part(jpeg(5))])), []);
  t.same(mpjpegParts(Buffer.alloc(0)), []);
});
