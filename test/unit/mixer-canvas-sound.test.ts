import t from 'tap';
import { Canvas, pictureBytes, yuvOf } from '../../src/mixers/canvas.js';
import { InputSound, SoundMix } from '../../src/mixers/sound.js';

const SIZE = { width: 16, height: 8 };

/** The Y' value at (x, y), and the Cb of the 2x2 block there. */
function at(canvas: Canvas, x: number, y: number): { y: number; u: number } {
  const { width, height } = canvas.size;
  return { y: canvas.data[y * width + x]!, u: canvas.data[width * height + (y >> 1) * (width / 2) + (x >> 1)]! };
}

function solid(width: number, height: number, y: number, u: number, v: number): Buffer {
  const picture = Buffer.alloc(pictureBytes(width, height));
  picture.fill(y, 0, width * height);
  picture.fill(u, width * height, width * height * 1.25);
  picture.fill(v, width * height * 1.25);
  return picture;
}

t.test('colours: #rrggbb to BT.601 limited-range Y′CbCr', async (t) => {
  t.same(yuvOf('#000000'), { y: 16, u: 128, v: 128 });
  t.same(yuvOf('#ffffff'), { y: 235, u: 128, v: 128 });
  t.same(yuvOf('#ff0000'), { y: 81, u: 90, v: 240 });
  t.throws(() => yuvOf('red'), /not a #rrggbb colour/);
});

t.test(
  'the canvas: background, a picture in its slot, a smaller one centred, a placeholder; a buffer the encoder holds is never drawn on',
  async (t) => {
    const canvas = new Canvas(SIZE, yuvOf('#000000'));
    canvas.clear();
    const first = canvas.data;
    canvas.draw({ x: 0, y: 0, width: 8, height: 8 }, solid(8, 8, 200, 50, 60), { width: 8, height: 8 });
    t.same(at(canvas, 0, 0), { y: 200, u: 50 }, 'the picture fills its slot');
    t.same(at(canvas, 7, 7), { y: 200, u: 50 });
    t.same(at(canvas, 8, 0), { y: 16, u: 128 }, 'the background beside it');
    canvas.draw({ x: 8, y: 0, width: 8, height: 8 }, solid(4, 4, 100, 70, 80), { width: 4, height: 4 });
    t.same(
      at(canvas, 10, 2),
      { y: 100, u: 70 },
      'a smaller picture (the size before a layout change) centred in its slot',
    );
    t.same(at(canvas, 8, 0), { y: 16, u: 128 }, 'around it the background');
    canvas.draw({ x: 8, y: 0, width: 4, height: 4 }, solid(8, 8, 120, 90, 90), { width: 8, height: 8 });
    t.same(at(canvas, 8, 0), { y: 120, u: 90 }, 'a larger one cut to its slot');
    t.same(at(canvas, 12, 0), { y: 16, u: 128 }, 'nothing of it outside the slot');
    canvas.fill({ x: 0, y: 4, width: 4, height: 4 }, yuvOf('#303030'));
    t.equal(at(canvas, 1, 5).y, yuvOf('#303030').y, 'a placeholder');
    t.throws(
      () => canvas.draw({ x: 0, y: 0, width: 4, height: 4 }, Buffer.alloc(10), { width: 4, height: 4 }),
      /bytes/,
    );
    canvas.clear();
    t.not(canvas.data, first, 'a new buffer for the next frame: the one handed to the encoder is left alone');
    t.equal(first[0], 200, 'which keeps its picture');
    t.equal(canvas.data[0], 16);
    const second = canvas.data;
    canvas.release(first);
    canvas.clear();
    t.equal(canvas.data, first, 'a picture the encoder gave back is made again, from the background');
    t.equal(first[0], 16);
    t.not(canvas.data, second);
    canvas.release(Buffer.alloc(4));
    canvas.clear();
    t.equal(canvas.data.length, pictureBytes(16, 8), 'a buffer of another size is not taken back');
    t.throws(() => new Canvas({ width: 15, height: 8 }, yuvOf('#000000')), /even size/);
  },
);

/** An input whose timeline starts at 0 on a clock the test holds. */
function input(now: { ms: number }): InputSound {
  const sound = new InputSound(() => now.ms);
  sound.begin(0);
  return sound;
}

const tone = (frames: number, value: number): Int16Array => new Int16Array(frames * 2).fill(value);

t.test('sound: inputs summed at their volumes, placed by capture time, silence where none came', async (t) => {
  const now = { ms: 0 };
  const a = input(now);
  const b = input(now);
  t.teardown(() => {
    a.close();
    b.close();
  });
  a.pushPcm(tone(480, 1000), 0);
  b.pushPcm(tone(480, 2000), 5); // 5 ms later: 240 frames in
  const mix = new SoundMix();
  const out = mix.mix([a, b], 480);
  t.equal(out[0], 1000, 'a alone before b starts');
  t.equal(out[240 * 2], 3000, 'summed once both play');
  b.volume = 0.5;
  a.muted = true;
  a.pushPcm(tone(480, 1000), 10);
  b.pushPcm(tone(120, 2000), 15);
  const next = mix.mix([a, b], 480);
  t.equal(next[0], 1000, 'b at half volume, a muted');
  t.equal(next[479 * 2], 0, 'silence where b has nothing');
  t.ok(
    b.levelDb > -30 && a.levelDb === -Infinity,
    `levels for the speaker layout (${b.levelDb.toFixed(1)} dB, muted ${a.levelDb})`,
  );
});

t.test('sound: a sum that would clip is limited below full scale, then comes back up', async (t) => {
  const now = { ms: 0 };
  const inputs = [input(now), input(now), input(now)];
  t.teardown(() => inputs.forEach((i) => i.close()));
  for (const sound of inputs) sound.pushPcm(tone(4800, 20000), 0);
  const mix = new SoundMix();
  const loud = mix.mix(inputs, 4800);
  const peak = Math.max(...loud.map(Math.abs));
  t.ok(peak <= 29205, `never above -1 dBFS (peak ${peak}, three inputs at 20000 each)`);
  t.ok(peak > 25000, 'but not turned down more than needed');
  const quiet = [input(now)];
  quiet[0]!.pushPcm(tone(48000, 1000), 0);
  const later = mix.mix(quiet, 14400);
  t.ok(later.at(-2)! > 990, `the level comes back (${later.at(-2)})`);
  quiet[0]!.close();
});
