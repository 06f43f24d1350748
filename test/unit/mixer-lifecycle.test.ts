import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import type { FfmpegProcess } from '../../src/ffmpeg/ffmpeg-process.js';
import type { FfmpegSupervisor } from '../../src/ffmpeg/supervisor.js';
import { Mixer, type MixerDeps } from '../../src/mixers/mixer.js';
import { mixerSpec } from '../helpers/mixer-spec.js';
import type { Publisher } from '../../src/publishers/publisher.js';

const spec = mixerSpec(64, 36);

function depsWith(spawn: () => FfmpegProcess): MixerDeps {
  return {
    supervisor: { spawn } as unknown as FfmpegSupervisor,
    ffmpegPath: 'ffmpeg',
    preset: 'veryfast',
    keyframeIntervalS: 2,
    log: pino({ level: 'silent' }),
  };
}

/** The mixer's temporary folders go to a folder of the test's own. */
function ownTmp(t: { teardown: (fn: () => void) => void }): string {
  const before = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), 'mixer-test-'));
  process.env.TMPDIR = dir;
  t.teardown(() => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

t.test('a mixer whose encoder cannot spawn leaves no folder behind', async (t) => {
  const dir = ownTmp(t);
  const output = { close: async () => {} } as unknown as Publisher;
  t.throws(
    () =>
      new Mixer(
        spec,
        output,
        [],
        depsWith(() => {
          throw new Error('spawn ffmpeg EAGAIN');
        }),
        () => {},
      ),
    /EAGAIN/,
  );
  t.same(readdirSync(dir), [], 'nothing was left in the temporary folder');
});

t.test("a mixer's close answers every caller once it has ended, and ends it once", async (t) => {
  const dir = ownTmp(t);
  let stopEncoder: () => void = () => {};
  const encoder = Object.assign(new EventEmitter(), {
    stop: () => new Promise<void>((resolve) => (stopEncoder = resolve)),
    videoBacklog: 0,
    writeVideo: () => {},
    write: () => {},
  }) as unknown as FfmpegProcess;
  const output = { close: async () => {} } as unknown as Publisher;
  const ended: string[] = [];
  const mixer = new Mixer(
    spec,
    output,
    [],
    depsWith(() => encoder),
    (reason) => ended.push(reason),
  );
  t.equal(readdirSync(dir).length, 1, 'its labels folder');
  const order: string[] = [];
  const first = mixer.close('asked').then(() => order.push('first'));
  const second = mixer.close('asked again').then(() => order.push('second'));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(order, [], 'neither caller is answered while the encoder is still stopping');
  t.ok(mixer.closed);
  stopEncoder();
  await Promise.all([first, second]);
  t.same(ended, ['asked'], 'it ended once, for the first reason');
  t.same(order.sort(), ['first', 'second']);
  t.same(readdirSync(dir), [], 'its folder is gone');
});
