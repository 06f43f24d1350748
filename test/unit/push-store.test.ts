import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FilePushStore, readRecords, type StoredPush } from '../../src/store/push-log.js';
import { Sealer } from '../../src/security/seal.js';

// The store of kept pushes on one machine: an append-only file flushed at each write, read back up
// to a torn end; and the sealing that keeps stream keys out of it.

const push = (id: string, stream = 'cam'): StoredPush => ({
  id,
  stream,
  startedBy: 'rest',
  createdAt: '2026-01-01T00:00:00.000Z',
  sealed: 'v1.x',
});

async function folder(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'push-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('puts and removes survive a reopen; the file is rewritten to what is kept', async (t) => {
  const path = join(await folder(t), 'pushes.log');
  const store = await FilePushStore.open(path);
  await store.put(push('a'));
  await store.put(push('b'));
  await store.put({ ...push('a'), startedBy: 'rest:ops' });
  await store.remove('b');
  await store.remove('never-kept');
  t.same(
    (await store.all()).map((p) => [p.id, p.startedBy]),
    [['a', 'rest:ops']],
  );
  t.equal(
    (await readFile(path, 'utf8')).trim().split('\n').length,
    4,
    'appended: three puts and one removal (nothing for an id never kept)',
  );
  await store.close();
  const again = await FilePushStore.open(path);
  t.same(
    (await again.all()).map((p) => [p.id, p.startedBy]),
    [['a', 'rest:ops']],
  );
  t.equal((await readFile(path, 'utf8')).trim().split('\n').length, 1, 'compacted at open');
  t.equal((await stat(path)).mode & 0o777, 0o600, "readable by the gateway's user alone");
  await again.close();
});

t.test('a write torn by a kill: the store opens with every whole record, and the torn end is cut', async (t) => {
  const path = join(await folder(t), 'pushes.log');
  const store = await FilePushStore.open(path);
  await store.put(push('a'));
  await store.put(push('b'));
  await store.close();
  const whole = await readFile(path, 'utf8');
  // Every cut of a third record, as a kill may leave it: any byte count of it written.
  const third = whole.split('\n')[0]!.replace(/"a"/, '"c"');
  for (const cut of [1, 17, 40, third.length - 1, third.length]) {
    await writeFile(path, whole + third.slice(0, cut));
    const reopened = await FilePushStore.open(path);
    t.same(
      (await reopened.all()).map((p) => p.id),
      ['a', 'b'],
      `cut after ${cut} bytes`,
    );
    t.ok(reopened.recovered.droppedBytes > 0, 'the torn end is told');
    await reopened.close();
    t.equal(await readFile(path, 'utf8'), whole, 'and cut off');
  }
  // A whole line whose checksum does not match (a changed byte) ends the log there too.
  const lines = whole.split('\n');
  await writeFile(path, `${lines[0]}\n${lines[1]!.replace('"b"', '"x"')}\n`);
  const altered = await FilePushStore.open(path);
  t.same(
    (await altered.all()).map((p) => p.id),
    ['a'],
  );
  await altered.close();
});

t.test('readRecords stops at the first line that is not a whole record', async (t) => {
  t.same(readRecords(''), { records: [], goodBytes: 0 });
  t.same(readRecords('garbage\n').records, []);
  t.same(readRecords('0000000000000000 {"put":{}}\n').records, [], 'a wrong checksum');
});

t.test('one process holds the store; a lock left by a process that is gone is taken over', async (t) => {
  const path = join(await folder(t), 'pushes.log');
  const store = await FilePushStore.open(path);
  await t.rejects(FilePushStore.open(path), /in use by process \d+/);
  await store.close();
  await writeFile(`${path}.lock`, '999999999'); // no such process
  const taken = await FilePushStore.open(path);
  await taken.close();
});

t.test('a removal asked just after a put is written after it', async (t) => {
  const path = join(await folder(t), 'pushes.log');
  const store = await FilePushStore.open(path);
  const put = store.put(push('a'));
  const removed = store.remove('a');
  await Promise.all([put, removed]);
  t.same(await store.all(), []);
  await store.close();
  const again = await FilePushStore.open(path);
  t.same(await again.all(), [], 'and stays removed');
  await again.close();
});

t.test('many writes: the log is compacted as it grows', async (t) => {
  const path = join(await folder(t), 'pushes.log');
  const store = await FilePushStore.open(path);
  for (let i = 0; i < 300; i++) await store.put(push('a'));
  const lines = (await readFile(path, 'utf8')).trim().split('\n').length;
  t.ok(lines < 300, `rewritten on the way (${lines} lines)`);
  await store.close();
});

t.test(
  'sealed values: no part of the secret they hold shows, in any encoding; another secret or a change is refused',
  async (t) => {
    const sealer = new Sealer('a secret of sixteen or more', 'kept pushes');
    const key = 'SKEYsealed4471';
    const sealed = sealer.seal({ rtmpUrl: `rtmp://a.rtmp.youtube.com/live2/${key}` });
    for (const spelling of [
      key,
      Buffer.from(key).toString('base64').slice(2, -2),
      Buffer.from(key).toString('base64url').slice(2, -2),
      Buffer.from(key).toString('hex'),
      'youtube',
    ]) {
      t.notOk(sealed.includes(spelling), `no ${spelling}`);
    }
    t.same(sealer.open(sealed), { rtmpUrl: `rtmp://a.rtmp.youtube.com/live2/${key}` });
    t.not(sealer.seal({ a: 1 }), sealer.seal({ a: 1 }), 'a fresh IV each time');
    t.throws(
      () => new Sealer('another secret of sixteen', 'kept pushes').open(sealed),
      /does not open with this secret/,
    );
    t.throws(() => new Sealer('a secret of sixteen or more', 'another purpose').open(sealed), /does not open/);
    const body = sealed.slice(3);
    const flipped = `v1.${body.slice(0, 10)}${body[10] === 'A' ? 'B' : 'A'}${body.slice(11)}`;
    t.throws(() => sealer.open(flipped), /does not open/);
    t.throws(() => sealer.open('v1.abc'), /cut short/);
    t.throws(() => sealer.open('plain'), /not a sealed value/);
  },
);
