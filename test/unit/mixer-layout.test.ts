import t from 'tap';
import { layoutSlots, LAYOUTS, MAX_MIXER_INPUTS, SpeakerFocus, type Slot } from '../../src/mixers/layout.js';

const SIZE = { width: 1280, height: 720 };

const overlaps = (a: Slot, b: Slot): boolean =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
const inside = (s: Slot): boolean =>
  s.x >= 0 && s.y >= 0 && s.x + s.width <= SIZE.width && s.y + s.height <= SIZE.height;

t.test(
  'every layout, 1 to 9 inputs: slots inside the picture, even, and apart (picture-in-picture insets over the main one)',
  async (t) => {
    for (const kind of LAYOUTS) {
      for (let count = 1; count <= MAX_MIXER_INPUTS; count++) {
        const slots = layoutSlots({ kind }, SIZE, count);
        t.equal(slots.length, count, `${kind} ${count}: one slot an input`);
        t.ok(slots.every(inside), `${kind} ${count}: inside the picture`);
        t.ok(
          slots.every((s) => [s.x, s.y, s.width, s.height].every((n) => n % 2 === 0 && n >= 0)),
          `${kind} ${count}: even`,
        );
        const apart = kind === 'picture-in-picture' ? slots.slice(1) : slots;
        t.notOk(
          apart.some((a, i) => apart.some((b, j) => i < j && overlaps(a, b))),
          `${kind} ${count}: no two overlap`,
        );
      }
    }
  },
);

t.test('grid: as square as the count allows, a short last row centred', async (t) => {
  t.same(layoutSlots({ kind: 'grid' }, SIZE, 1), [{ x: 0, y: 0, width: 1280, height: 720 }]);
  t.same(layoutSlots({ kind: 'grid' }, SIZE, 4), [
    { x: 0, y: 0, width: 640, height: 360 },
    { x: 640, y: 0, width: 640, height: 360 },
    { x: 0, y: 360, width: 640, height: 360 },
    { x: 640, y: 360, width: 640, height: 360 },
  ]);
  const three = layoutSlots({ kind: 'grid' }, SIZE, 3);
  t.same(three[2], { x: 320, y: 360, width: 640, height: 360 }, 'the third of three centred under the first two');
  t.equal(layoutSlots({ kind: 'grid' }, SIZE, 9)[8]!.x, 852, 'nine: three by three');
});

t.test('side by side, picture-in-picture and speaker focus', async (t) => {
  t.same(layoutSlots({ kind: 'side-by-side' }, SIZE, 2), [
    { x: 0, y: 0, width: 640, height: 720 },
    { x: 640, y: 0, width: 640, height: 720 },
  ]);
  const pip = layoutSlots({ kind: 'picture-in-picture', pip: { corner: 'top-left', size: 0.25 } }, SIZE, 3);
  t.same(pip[0], { x: 0, y: 0, width: 1280, height: 720 }, 'the first fills the picture');
  t.same(
    pip[1],
    { x: 24, y: 24, width: 320, height: 180 },
    'an inset of a quarter of the width, in the corner asked for',
  );
  t.ok(pip[2]!.y > pip[1]!.y + pip[1]!.height, 'the next inset below it');
  const corner = layoutSlots({ kind: 'picture-in-picture' }, SIZE, 2)[1]!;
  t.ok(corner.x + corner.width > 1200 && corner.y + corner.height > 680, 'bottom right by default');
  const speaker = layoutSlots({ kind: 'speaker' }, SIZE, 3, 1);
  t.same(speaker[1], { x: 0, y: 0, width: 1280, height: 540 }, 'the input in focus large');
  t.same(
    [speaker[0], speaker[2]],
    [
      { x: 0, y: 540, width: 640, height: 180 },
      { x: 640, y: 540, width: 640, height: 180 },
    ],
    'the others in a strip below, in input order',
  );
});

t.test('a count out of range is refused', async (t) => {
  t.throws(() => layoutSlots({ kind: 'grid' }, SIZE, 10), /0 to 9 inputs/);
  t.same(layoutSlots({ kind: 'grid' }, SIZE, 0), []);
});

t.test('speaker focus moves only to an input clearly louder for long enough, and not too often', async (t) => {
  const focus = new SpeakerFocus({ marginDb: 6, holdMs: 1000, minimumMs: 2000 }, 0);
  t.equal(focus.update([-20, -18], 100), 0, 'a little louder is not enough');
  t.equal(focus.update([-40, -20], 2500), 0, 'clearly louder, but not yet for long');
  t.equal(focus.update([-40, -20], 3000), 0, 'still not a second');
  t.equal(focus.update([-40, -60], 3200), 0, 'a pause resets the challenge');
  t.equal(focus.update([-40, -20], 3300), 0);
  t.equal(focus.update([-40, -20], 4300), 1, 'louder by 6 dB for a second: the focus moves');
  t.equal(focus.update([-10, -60], 4400), 1);
  t.equal(focus.update([-10, -60], 5500), 1, 'held 1.1 s, but the focus moved only 1.2 s ago');
  t.equal(focus.update([-10, -60], 6400), 0, 'two seconds after it last moved, it may move again');
  t.equal(focus.update([-10, -Infinity, -5], 6500), 0, 'an input without sound never takes it');
  t.equal(focus.update([-10], 6600), 0);
  const shrunk = new SpeakerFocus(undefined, 0);
  shrunk.update([-60, -60, -10], 0);
  t.equal(shrunk.update([-10], 5000), 0, 'the input in focus removed: the first takes it');
});
