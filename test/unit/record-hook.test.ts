import t, { type Test } from 'tap';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { isAlive, waitFor } from '../../kit/processes.js';
import { parseConfig } from '../../src/config/load.js';
import { RecordHook, type RecordHookSettings } from '../../src/recordings/record-hook.js';

// `record_hook`: a real script, written here, run for finished parts: its arguments and environment,
// its output and exit logged, a hook that hangs killed with what it started, the queue's bounds,
// the gateway's close, and names that a shell would read as commands reaching it as plain words.

interface Line {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A folder of its own for the test, removed at its end. */
async function folder(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'record-hook-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An executable shell script at `dir/name`. */
async function script(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** A hook that logs into `lines`, closed at the test's end. */
function hook(t: Test, settings: Partial<RecordHookSettings> & { command: string }, lines: Line[]): RecordHook {
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  const made = new RecordHook({ timeoutMs: 10_000, concurrency: 4, queueLimit: 1000, ...settings }, '/rec', log);
  t.teardown(() => made.close());
  return made;
}

const part = { path: '/rec/cam-20261124T102233Z-001.mp4', stream: 'cam', mediaSessionId: 'a1b2c3d4', durationMs: 1234 };
const ended = (lines: Line[]): Line | undefined =>
  lines.find((l) => /^record hook (done|failed|timed|killed)/.test(l.msg));

t.test('a hook is given the part, its stream and its push as arguments and RECORD_* variables', async (t) => {
  const dir = await folder(t);
  const command = await script(
    dir,
    'hook.sh',
    `printf '%s\\n' "$@" > ${dir}/args\nenv | grep ^RECORD_ | sort > ${dir}/env\nenv > ${dir}/all\necho copied\necho warned >&2`,
  );
  const lines: Line[] = [];
  // A secret of the gateway's own environment stays there.
  process.env.GATEWAY_HOOK_CANARY = 'canary-secret-in-the-environment';
  t.teardown(() => delete process.env.GATEWAY_HOOK_CANARY);
  hook(t, { command }, lines).run(part);
  const done = await waitFor('the hook to end', () => ended(lines));
  t.match(done, { msg: 'record hook done', code: 0, file: part.path, level: 30 });
  t.same((await readFile(join(dir, 'args'), 'utf8')).split('\n'), ['cam', part.path, 'a1b2c3d4', '']);
  t.same((await readFile(join(dir, 'env'), 'utf8')).trim().split('\n'), [
    'RECORD_DURATION_MS=1234',
    `RECORD_FILE=${part.path}`,
    'RECORD_MEDIA_SESSION_ID=a1b2c3d4',
    'RECORD_STREAM=cam',
  ]);
  const all = await readFile(join(dir, 'all'), 'utf8');
  t.notMatch(all, /canary-secret|GATEWAY_/, "none of the gateway's own variables");
  t.match(all, /^PATH=/m, 'but PATH');
  const output = lines.filter((l) => l.msg === 'record hook output');
  t.match(
    output.map((l) => [l.stream, l.line]).sort(),
    [
      ['stderr', 'warned'],
      ['stdout', 'copied'],
    ],
    'its output is logged, line by line',
  );
});

t.test('an object key, once given, is a fourth argument and RECORD_OBJECT_KEY', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', `printf '%s\\n' "$@" "$RECORD_OBJECT_KEY" > ${dir}/args`);
  const lines: Line[] = [];
  hook(t, { command }, lines).run(part, 'recordings/cam-001.mp4');
  await waitFor('the hook to end', () => ended(lines));
  t.same((await readFile(join(dir, 'args'), 'utf8')).trim().split('\n'), [
    'cam',
    part.path,
    'a1b2c3d4',
    'recordings/cam-001.mp4',
    'recordings/cam-001.mp4',
  ]);
});

t.test('names a shell would read as commands reach the hook as one argument each, and nothing runs', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', `printf '%s\\n' "$@" > ${dir}/args`);
  const lines: Line[] = [];
  // Stream names allow `#` (a shell's comment); the push's id and the path are any text to the hook.
  const tricky = {
    path: `/rec/a b;touch ${dir}/by-path.mp4`,
    stream: 'cam#1',
    mediaSessionId: `$(touch ${dir}/by-id)\`touch ${dir}/by-quote\``,
  };
  hook(t, { command }, lines).run(tricky);
  await waitFor('the hook to end', () => ended(lines));
  t.same((await readFile(join(dir, 'args'), 'utf8')).split('\n'), ['cam#1', tricky.path, tricky.mediaSessionId, '']);
  for (const name of ['by-path.mp4', 'by-id', 'by-quote'])
    t.rejects(stat(join(dir, name)), { code: 'ENOENT' }, `${name}: nothing was run`);
});

t.test('a hook that exits 3 is logged as failed, with its code', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', 'echo "no bucket" >&2\nexit 3');
  const lines: Line[] = [];
  hook(t, { command }, lines).run(part);
  const done = await waitFor('the hook to end', () => ended(lines));
  t.match(done, { msg: 'record hook failed', code: 3, level: 40 });
  t.ok(lines.some((l) => l.line === 'no bucket'));
});

t.test('a hook that hangs is killed after its timeout, with what it started', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', `sleep 1000 &\necho $! > ${dir}/sleeper\nwait`);
  const lines: Line[] = [];
  const made = hook(t, { command, timeoutMs: 300 }, lines);
  made.run(part);
  const sleeper = Number(await waitFor('the sleeper', () => readFile(join(dir, 'sleeper'), 'utf8').catch(() => '')));
  t.ok(isAlive(sleeper), 'it runs');
  const done = await waitFor('the hook to end', () => ended(lines));
  t.match(done, { msg: 'record hook timed out and was killed', signal: 'SIGKILL', timeoutMs: 300, level: 40 });
  await waitFor('the sleeper to be gone', () => !isAlive(sleeper));
  t.same(made.toJSON(), { running: 0, waiting: 0, dropped: 0 });
});

t.test('a hook that cannot start is logged and the gateway goes on', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', 'exit 0');
  const lines: Line[] = [];
  const made = hook(t, { command }, lines);
  await rm(command); // removed after the configuration was read
  made.run(part);
  const failed = await waitFor('the error', () => lines.find((l) => l.msg === 'record hook could not start'));
  t.match(failed, { reason: 'ENOENT', level: 50 });
  t.same(made.toJSON(), { running: 0, waiting: 0, dropped: 0 });
});

t.test('output is logged up to 50 lines and 8 KB a run; the rest is counted', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', 'seq 1 200\nhead -c 100000 /dev/zero | tr "\\0" x');
  const lines: Line[] = [];
  hook(t, { command }, lines).run(part);
  const done = await waitFor('the hook to end', () => ended(lines));
  const output = lines.filter((l) => l.msg === 'record hook output');
  t.equal(output.length, 50);
  t.same(
    output.map((l) => l.line),
    Array.from({ length: 50 }, (_, i) => String(i + 1)),
  );
  // 150 numbers, and the 100,000 x's in pieces of 8 KB.
  t.equal(done!.outputLinesLeftOut, 150 + Math.ceil(100_000 / 8192));

  const long = await script(dir, 'long.sh', 'head -c 100000 /dev/zero | tr "\\0" x');
  const longLines: Line[] = [];
  hook(t, { command: long }, longLines).run(part);
  await waitFor('the long hook to end', () => ended(longLines));
  const logged = longLines.filter((l) => l.msg === 'record hook output').map((l) => l.line as string);
  t.equal(logged.length, 1, 'a line longer than the budget is logged cut');
  t.equal(logged[0], `${'x'.repeat(8192)}`);
});

t.test('a few run at once; the others wait, the oldest dropped beyond the queue limit', async (t) => {
  const dir = await folder(t);
  // Each run says it started and waits for the test to let it go.
  const command = await script(
    dir,
    'hook.sh',
    `touch "${dir}/started-$1"\nwhile [ ! -e "${dir}/go" ]; do sleep 0.02; done`,
  );
  const lines: Line[] = [];
  const made = hook(t, { command, concurrency: 2, queueLimit: 2 }, lines);
  for (const n of [1, 2, 3, 4, 5]) made.run({ ...part, stream: `s${n}` });
  t.same(made.toJSON(), { running: 2, waiting: 2, dropped: 1 });
  t.match(
    lines.find((l) => l.msg.startsWith('record hook not run')),
    { level: 40, file: part.path, queueLimit: 2 },
  );
  await waitFor('two started', async () => (await started()).length === 2);
  t.same(await started(), ['s1', 's2'], 'the first two run');
  await writeFile(join(dir, 'go'), '');
  await waitFor('every run to end', () => made.toJSON().running + made.toJSON().waiting === 0);
  t.same(await started(), ['s1', 's2', 's4', 's5'], 's3, the oldest waiting, was dropped');
  t.equal(lines.filter((l) => l.msg === 'record hook done').length, 4);

  async function started(): Promise<string[]> {
    return (await readdir(dir))
      .filter((f) => f.startsWith('started-'))
      .map((f) => f.slice('started-'.length))
      .sort();
  }
});

t.test('close kills the runs going, drops those waiting and resolves once they ended', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', `echo $$ > "${dir}/pid-$1"\nexec sleep 1000`);
  const lines: Line[] = [];
  const made = hook(t, { command, concurrency: 1 }, lines);
  made.run({ ...part, stream: 'first' });
  made.run({ ...part, stream: 'second' });
  const pid = Number(await waitFor('the first', () => readFile(join(dir, 'pid-first'), 'utf8').catch(() => '')));
  await made.close();
  t.notOk(isAlive(pid), 'the run going was killed');
  t.match(ended(lines), { msg: 'record hook killed: the gateway stops', signal: 'SIGKILL' });
  t.match(
    lines.find((l) => l.msg.startsWith('record hook not run for parts still waiting')),
    { dropped: 1 },
  );
  made.run(part);
  t.same(made.toJSON(), { running: 0, waiting: 0, dropped: 0 }, 'nothing runs once closed');
  await made.close();
});

t.test('record_hook is checked as the configuration is read', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', 'exit 0');
  const plain = join(dir, 'plain.sh');
  await writeFile(plain, 'exit 0\n');
  await mkdir(join(dir, 'folder'));
  t.equal(parseConfig({}).record_hook, '', 'none by default');
  t.equal(parseConfig({}).record_hook_timeout_s, 30);
  t.equal(parseConfig({ record_hook: command }).record_hook, command);
  for (const wrong of ['hook.sh', plain, join(dir, 'folder'), join(dir, 'missing.sh')])
    t.throws(
      () => parseConfig({ record_hook: wrong }),
      /record_hook: must be the absolute path of an executable file/,
      wrong,
    );
  t.throws(() => parseConfig({ record_hook_timeout_s: 0 }), /record_hook_timeout_s/);
});

t.test('the hook follows the finished parts of this node, with their path in record_dir', async (t) => {
  const dir = await folder(t);
  const command = await script(dir, 'hook.sh', `printf '%s\\n' "$@" >> ${dir}/args`);
  const lines: Line[] = [];
  const made = hook(t, { command }, lines);
  const told = { file: 'cam-001.mp4', stream: 'cam', mediaSessionId: 'id1', startedAt: new Date().toISOString() };
  made.follow({ type: 'recording.started', ...told });
  made.follow({ type: 'recording.finished', ...told, durationMs: 10_000 });
  await waitFor('the hook to end', () => ended(lines));
  t.same((await readFile(join(dir, 'args'), 'utf8')).trim().split('\n'), ['cam', '/rec/cam-001.mp4', 'id1']);
  t.equal(lines.filter((l) => l.msg === 'record hook done').length, 1, 'started parts are not told');
});
