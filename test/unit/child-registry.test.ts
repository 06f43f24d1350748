import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildRegistry } from '../../src/ffmpeg/child-registry.js';
import { startProcess, stopProcess } from '../../kit/processes.js';

const dir = await mkdtemp(join(tmpdir(), 'registry-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('the file follows the children that start and end', async (t) => {
  const file = join(dir, 'a.json');
  const registry = new ChildRegistry(file);
  registry.add(process.pid);
  t.match(JSON.parse(await readFile(file, 'utf8')), {
    gatewayPid: process.pid,
    children: [{ pid: process.pid, startTime: /^\d+$/ }],
  });
  registry.remove(process.pid);
  t.same(JSON.parse(await readFile(file, 'utf8')).children, []);
});

t.test('reap ends only what it recorded: not a reused PID, not a process that is not ffmpeg', async (t) => {
  const sleeper = startProcess('sleep', ['30']);
  t.teardown(() => stopProcess(sleeper));
  const file = join(dir, 'b.json');
  const registry = new ChildRegistry(file);
  registry.add(sleeper.pid!);
  t.same(ChildRegistry.reap(file), [], 'a recorded process that is not ffmpeg is left alone');
  const recorded = JSON.parse(await readFile(file, 'utf8'));
  recorded.children[0].startTime = '1';
  await writeFile(file, JSON.stringify(recorded));
  t.same(ChildRegistry.reap(file), [], 'a PID with another start time is left alone');
  t.equal(sleeper.exitCode, null, 'the process still runs');
  t.same(ChildRegistry.reap(join(dir, 'missing.json')), [], 'no file: nothing to do');
});
