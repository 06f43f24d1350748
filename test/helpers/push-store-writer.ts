import { statSync } from 'node:fs';
import { FilePushStore } from '../../src/store/push-log.js';

// A process that writes push definitions as fast as it can, for a test to kill with SIGKILL in the
// middle of a write: it prints `put <id>` and `del <id>` once each is acknowledged (durable), and
// `removing <id>` before a removal (which may then be written or not). With
// `--huge [id]` it prints `huge <the file's size>` and then writes one record of 64 MB, long enough to be
// killed inside.

const path = process.argv[2];
if (!path) throw new Error('usage: push-store-writer <file>');
const store = await FilePushStore.open(path);
if (process.argv[3] === '--huge') {
  // The file's size before the record: where a torn write begins.
  process.stdout.write(`huge ${statSync(path).size}\n`);
  await store.put({
    id: process.argv[4] ?? 'huge',
    stream: 's',
    startedBy: 'rest',
    createdAt: new Date().toISOString(),
    sealed: `v1.${'x'.repeat(64 << 20)}`,
  });
  process.stdout.write(`put ${process.argv[4] ?? 'huge'}\n`);
}
const tag = process.pid.toString(36);
for (let i = 0; ; i++) {
  const id = `${tag}-${i}`;
  // Records of 1-6 KB, and one in ten of 1 MB: a kill can land in the middle of such a write, leaving part of it.
  const size = i % 10 === 9 ? 1 << 20 : 1000 + (i % 5000);
  await store.put({
    id,
    stream: `s${i % 7}`,
    startedBy: 'rest',
    createdAt: new Date().toISOString(),
    sealed: `v1.${'x'.repeat(size)}`,
  });
  process.stdout.write(`put ${id}\n`);
  if (i % 3 === 2) {
    const gone = `${tag}-${i - 1}`;
    process.stdout.write(`removing ${gone}\n`);
    await store.remove(gone);
    process.stdout.write(`del ${gone}\n`);
  }
}
