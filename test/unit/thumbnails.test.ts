import t, { type Test } from 'tap';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import {
  Thumbnailer,
  thumbnailFileName,
  type ThumbnailSettings,
  type ThumbnailSource,
} from '../../src/viewers/thumbnails.js';

// Thumbnails' rules against a fake plane: file names, what is decoded when, the numbered files'
// rotation, how many snapshots at once, what a stream that ends leaves, and errors told once.

interface FakeStream {
  name: string;
  id: string;
  state: string;
  keyframes: number;
}

/** A plane of `streams` whose snapshot is the stream's name and keyframe count, counted per call. */
function fakeSource(streams: FakeStream[]): ThumbnailSource & { asked: string[]; fail?: Error } {
  const source = {
    asked: [] as string[],
    fail: undefined as Error | undefined,
    streams: async () => streams.map((s) => ({ ...s })),
    snapshot: async (name: string) => {
      source.asked.push(name);
      if (source.fail) throw source.fail;
      const stream = streams.find((s) => s.name === name)!;
      return Buffer.from(`${name} keyframe ${stream.keyframes}`);
    },
  };
  return source;
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'thumbnails-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function settings(dir: string, more: Partial<ThumbnailSettings> = {}): ThumbnailSettings {
  return { intervalS: 2, streams: [], dir, naming: 'latest', keep: 100, concurrency: 2, ...more };
}

/** A clock that moves a second at each reading, from 2026-11-24 10:22:33 UTC. */
function steppingClock(): () => Date {
  let at = Date.parse('2026-11-24T10:22:33.456Z');
  return () => new Date((at += 1000) - 1000);
}

const silent = pino({ level: 'silent' });

t.test('a thumbnail is <stream>.jpg, or <stream>-<UTC compact time>.jpg; names are made safe', async (t) => {
  const at = new Date('2026-11-24T10:22:33.456Z');
  t.equal(thumbnailFileName('cam', 'latest', at), 'cam.jpg');
  t.equal(thumbnailFileName('cam', 'numbered', at), 'cam-20261124T102233Z.jpg');
  t.equal(thumbnailFileName('user1#room1', 'latest', at), 'user1_room1.jpg', '# becomes _');
  t.equal(thumbnailFileName('.hidden', 'latest', at), '_hidden.jpg', 'no hidden file');
  t.equal(thumbnailFileName('-x', 'numbered', at), '_x-20261124T102233Z.jpg', 'no option-like name');
});

t.test(
  'latest: written at the first keyframe, replaced at the next; nothing asked for while the keyframe is the same',
  async (t) => {
    const dir = await tempDir(t);
    const cam = { name: 'cam', id: 'p1', state: 'publishing', keyframes: 0 };
    const source = fakeSource([cam, { name: 'desk', id: 'p2', state: 'connecting', keyframes: 3 }]);
    const thumbnails = new Thumbnailer(source, settings(dir), silent);
    t.teardown(() => thumbnails.close());

    await thumbnails.round();
    t.same(source.asked, [], 'no keyframe yet, and a stream not publishing: nothing asked for');
    t.equal(await thumbnails.latest('cam'), undefined);

    cam.keyframes = 1;
    await thumbnails.round();
    t.same(source.asked, ['cam']);
    t.equal(await readFile(join(dir, 'cam.jpg'), 'utf8'), 'cam keyframe 1');
    const first = await stat(join(dir, 'cam.jpg'));

    await thumbnails.round();
    await thumbnails.round();
    t.same(source.asked, ['cam'], 'the same keyframe: not asked for again');
    t.equal((await stat(join(dir, 'cam.jpg'))).mtimeMs, first.mtimeMs, 'nor written again');

    cam.keyframes = 2;
    await thumbnails.round();
    t.same(source.asked, ['cam', 'cam']);
    t.equal(await readFile(join(dir, 'cam.jpg'), 'utf8'), 'cam keyframe 2', 'replaced');
    t.same(await readdir(dir), ['cam.jpg'], 'nothing left aside');
    t.equal((await thumbnails.latest('cam'))?.jpeg.toString(), 'cam keyframe 2', 'the GET has it from memory');

    cam.id = 'p3'; // published again: a new count from 1
    cam.keyframes = 2;
    await thumbnails.round();
    t.same(source.asked, ['cam', 'cam', 'cam'], 'a new publish of the stream is a new keyframe');
  },
);

t.test('numbered: one file per thumbnail, the oldest deleted beyond keep, an earlier run’s counted', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'cam-20200101T000000Z.jpg'), 'an earlier run');
  await writeFile(join(dir, 'cam-x-20200101T000000Z.jpg'), "another stream's");
  await writeFile(join(dir, 'cam-notes.jpg'), 'not a thumbnail');
  const cam = { name: 'cam', id: 'p1', state: 'publishing', keyframes: 1 };
  const source = fakeSource([cam]);
  const thumbnails = new Thumbnailer(source, settings(dir, { naming: 'numbered', keep: 3 }), silent, steppingClock());
  t.teardown(() => thumbnails.close());
  await thumbnails.round();
  t.ok((await readdir(dir)).includes('cam-20200101T000000Z.jpg'), 'within keep, the earlier one stays');
  for (let k = 2; k <= 5; k++) {
    cam.keyframes = k;
    await thumbnails.round();
  }
  t.same(
    (await readdir(dir)).sort(),
    [
      'cam-20261124T102235Z.jpg',
      'cam-20261124T102236Z.jpg',
      'cam-20261124T102237Z.jpg',
      'cam-notes.jpg',
      'cam-x-20200101T000000Z.jpg',
    ],
    "the three newest are kept; another stream's file and a file of another name are left",
  );
  t.equal(await readFile(join(dir, 'cam-20261124T102237Z.jpg'), 'utf8'), 'cam keyframe 5');

  await thumbnails.close();
  const again = new Thumbnailer(source, settings(dir, { naming: 'numbered', keep: 3 }), silent);
  t.teardown(() => again.close());
  t.equal((await again.latest('cam'))?.jpeg.toString(), 'cam keyframe 5', 'another run serves the newest file');
  t.equal(await again.latest('desk'), undefined);
});

t.test('at most `concurrency` snapshots at once, every due stream served in the round', async (t) => {
  const dir = await tempDir(t);
  const streams = Array.from({ length: 7 }, (_, i) => ({
    name: `s${i}`,
    id: `p${i}`,
    state: 'publishing',
    keyframes: 1,
  }));
  let running = 0;
  let peak = 0;
  const source: ThumbnailSource = {
    streams: async () => streams,
    snapshot: async (name) => {
      peak = Math.max(peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      return Buffer.from(name);
    },
  };
  const thumbnails = new Thumbnailer(source, settings(dir, { concurrency: 3 }), silent);
  t.teardown(() => thumbnails.close());
  const [a, b] = [thumbnails.round(), thumbnails.round()];
  t.equal(a, b, 'a round asked for while one runs is that one');
  await a;
  t.equal(peak, 3);
  t.equal((await readdir(dir)).length, 7);
});

t.test(
  'a stream that ends is forgotten in memory; its file stays and answers; thumbnail_streams chooses',
  async (t) => {
    const dir = await tempDir(t);
    const streams = [
      { name: 'cam', id: 'p1', state: 'publishing', keyframes: 1 },
      { name: 'desk', id: 'p2', state: 'publishing', keyframes: 1 },
    ];
    const source = fakeSource(streams);
    const thumbnails = new Thumbnailer(source, settings(dir, { streams: ['cam'] }), silent);
    t.teardown(() => thumbnails.close());
    await thumbnails.round();
    t.same(source.asked, ['cam'], 'desk is not among thumbnail_streams');
    t.same(await readdir(dir), ['cam.jpg']);
    t.equal(await thumbnails.latest('desk'), undefined);

    streams.shift();
    await thumbnails.round();
    const left = await thumbnails.latest('cam');
    t.equal(left?.jpeg.toString(), 'cam keyframe 1', 'from its file');
    t.equal(left?.at.getTime(), (await stat(join(dir, 'cam.jpg'))).mtime.getTime(), "dated by the file's time");
  },
);

t.test('errors are told once per stream and kind, never thrown; the next keyframe is tried again', async (t) => {
  const dir = await tempDir(t);
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const cam = { name: 'cam', id: 'p1', state: 'publishing', keyframes: 1 };
  const source = fakeSource([cam]);
  source.fail = Object.assign(new Error('stream cam has no keyframe yet'), { code: 'not_found' });
  const thumbnails = new Thumbnailer(source, settings(dir), log);
  t.teardown(() => thumbnails.close());
  await thumbnails.round();
  await thumbnails.round();
  t.equal(source.asked.length, 2, 'a failed snapshot is asked for again');
  t.equal(lines.length, 1, 'told once');
  t.match(JSON.parse(lines[0]!), { stream: 'cam', reason: 'stream cam has no keyframe yet' });
  source.fail = undefined;
  await thumbnails.round();
  t.equal(await readFile(join(dir, 'cam.jpg'), 'utf8'), 'cam keyframe 1');

  const broken = new Thumbnailer(source, settings(join(dir, 'cam.jpg', 'below')), log);
  t.teardown(() => broken.close());
  await broken.round();
  await broken.round();
  t.equal(lines.length, 2, "a folder that cannot be made: told once, for the gateway's");
});

t.test('with interval 0 nothing starts and nothing is served; close is idempotent', async (t) => {
  const dir = await tempDir(t);
  const source = fakeSource([{ name: 'cam', id: 'p1', state: 'publishing', keyframes: 1 }]);
  const off = new Thumbnailer(source, settings(dir, { intervalS: 0 }), silent);
  off.start();
  t.equal(off.enabled, false);
  t.equal(await off.latest('cam'), undefined);
  await off.close();
  await off.close();
  await off.round();
  t.same(source.asked, [], 'a closed one takes none');
});
