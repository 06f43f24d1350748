import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import { SpawnerConnection, SpawnerProcess } from '../../src/ffmpeg/spawner-client.js';
import { proof } from '../../src/ffmpeg/spawner-wire.js';
import { ffmpegQuietly } from '../../src/ffmpeg/ffmpeg-process.js';
import { FfmpegSupervisor } from '../../src/ffmpeg/supervisor.js';
import { waitFor } from '../../kit/processes.js';

/** Whether `pid` runs (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A spawner of the test's own, ended by the test, and a supervisor starting ffmpeg through it. */
function ownSpawner(t: Test): { spawner: SpawnerProcess; supervisor: FfmpegSupervisor } {
  const spawner = new SpawnerProcess();
  const supervisor = new FfmpegSupervisor(undefined, new SpawnerConnection(spawner.address, () => spawner.ready));
  t.teardown(() => {
    supervisor.killAll();
    spawner.close();
  });
  return { spawner, supervisor };
}

t.test("ffmpeg's standard output is read into the caller's one buffer, every byte, in order", async (t) => {
  const supervisor = new FfmpegSupervisor();
  t.teardown(() => supervisor.killAll());
  const buffer = Buffer.alloc(4096);
  const reads: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const errors: unknown[] = [];
  // 10 pictures of 64x64 grey, each a different level: 40 960 bytes, more than the buffer holds.
  const args = [
    ...ffmpegQuietly('pipe'),
    '-f',
    'lavfi',
    '-i',
    'color=c=black:s=64x64:r=10,format=gray,geq=lum=N*20',
    '-frames:v',
    '10',
    '-f',
    'rawvideo',
    '-pix_fmt',
    'gray',
    'pipe:1',
  ];
  const ffmpeg = supervisor.spawnReading(
    'ffmpeg',
    args,
    (_event, error) => errors.push(error),
    buffer,
    (data) => {
      buffers.add(data.buffer);
      reads.push(Buffer.from(data));
    },
  );
  t.equal(supervisor.count, 1, 'it is supervised as any ffmpeg');
  await ffmpeg.exited;
  const all = await waitFor('all of its output', () => {
    const joined = Buffer.concat(reads);
    return joined.length >= 40_960 ? joined : undefined;
  });
  t.equal(all.length, 40_960, 'every byte');
  t.same(
    [0, 1, 9].map((n) => all[n * 4096 + 100]),
    [0, 20, 180],
    'in order: the levels of the first, second and last pictures',
  );
  t.same([...buffers], [buffer.buffer], 'every read was into the one buffer');
  t.same(errors, []);
  t.equal(supervisor.count, 0);
});

t.test('what is written before ffmpeg has started reaches it, in order, and its end too', async (t) => {
  const { supervisor } = ownSpawner(t);
  // ffmpeg copies its standard input to its standard output, which ends when its input ends.
  const ffmpeg = supervisor.spawn('ffmpeg', [
    ...ffmpegQuietly('pipe'),
    '-f',
    'data',
    '-i',
    'pipe:0',
    '-map',
    '0',
    '-c',
    'copy',
    '-f',
    'data',
    'pipe:1',
  ]);
  const out: Buffer[] = [];
  ffmpeg.on('output', (data) => out.push(data));
  t.equal(ffmpeg.pid, undefined, 'not started yet when the writes are made');
  for (let i = 0; i < 100; i++) ffmpeg.write(Buffer.alloc(1000, i));
  t.equal(ffmpeg.inputBacklog, 100_000, 'the bytes waiting count as its backlog');
  ffmpeg.endInput();
  t.notOk(ffmpeg.write(Buffer.alloc(1000, 200)), 'nothing more is taken once its input is ended');
  await ffmpeg.closed;
  t.equal(ffmpeg.exitCode, 0);
  const all = Buffer.concat(out);
  t.equal(all.length, 100_000, 'every byte');
  t.same([all[0], all[999], all[1000], all[99_999]], [0, 0, 1, 99], 'in order');
});

t.test('a binary that cannot be started ends as a shell says: 127, its error code in its log', async (t) => {
  const { supervisor } = ownSpawner(t);
  const child = supervisor.spawn('/nonexistent/ffmpeg', ['-version']);
  const lines: string[] = [];
  child.on('line', (line) => lines.push(line));
  await child.closed;
  t.equal(child.exitCode, 127);
  t.same(lines, ['failed to start /nonexistent/ffmpeg: ENOENT']);
  t.equal(await child.started, undefined);
  t.equal(supervisor.count, 0);
});

t.test('a connection without a proof of the secret is closed, and starts nothing', async (t) => {
  const { spawner } = ownSpawner(t);
  await spawner.ready;
  const never = join(tmpdir(), `spawner-stranger-${process.pid}`);
  for (const hello of [
    { control: 'stranger', proof: proof('00'.repeat(32), 'control:stranger') },
    { control: 'stranger', secret: spawner.address.secret },
    { control: 'stranger' },
    'not json',
    'x'.repeat(2000),
  ]) {
    const stranger = connect({ path: spawner.address.name });
    stranger.on('error', () => {});
    const replies: string[] = [];
    stranger.on('data', (data: Buffer) => replies.push(data.toString()));
    stranger.write(`${typeof hello === 'string' ? hello : JSON.stringify(hello)}\n`);
    stranger.write(`${JSON.stringify({ id: 0, binary: 'touch', args: [never], slots: [] })}\n`);
    await new Promise((resolve) => stranger.once('close', resolve));
    t.same(replies, [], `closed without an answer: ${JSON.stringify(hello).slice(0, 40)}`);
  }
  t.notOk(existsSync(never), 'nothing was started');
});

t.test(
  "every child is killed when the spawner's input ends (the gateway has gone), once its grace is over",
  async (t) => {
    const spawner = new SpawnerProcess();
    t.teardown(() => spawner.close());
    const args = [...ffmpegQuietly('pipe'), '-re', '-f', 'lavfi', '-i', 'anullsrc', '-f', 'null', '-'];
    const first = new FfmpegSupervisor(undefined, new SpawnerConnection(spawner.address, () => spawner.ready));
    const second = new FfmpegSupervisor(undefined, new SpawnerConnection(spawner.address, () => spawner.ready));
    const a = first.spawn('ffmpeg', args);
    const b = second.spawn('ffmpeg', args);
    const [pidA, pidB] = [await a.started, await b.started];
    t.ok(pidA && alive(pidA) && pidB && alive(pidB), 'both run');
    // A signal to the gateway's whole process group is the gateway's to act on: the spawner stays.
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(spawner.pid!, signal);
    const third = first.spawn('ffmpeg', ['-hide_banner', '-version']);
    await third.closed;
    t.equal(third.exitCode, 0, 'after SIGTERM, SIGINT and SIGHUP, it still starts ffmpeg');
    t.ok(alive(pidA!) && alive(pidB!), 'and its children run on');
    spawner.close();
    await Promise.all([a.exited, b.exited]);
    await waitFor('both to be gone', () => !alive(pidA!) && !alive(pidB!));
    t.pass('the spawner ended every child when its input ended');
  },
);

t.test("a stranger listening at the spawner's name hears no argument, no secret and no media", async (t) => {
  // It took the name (as it could while the spawner restarts) and answers with a proof it cannot make.
  const name = `\0spawner-impostor-${process.pid}`;
  const heard: Buffer[] = [];
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => heard.push(data));
    socket.write(`${JSON.stringify({ spawner: '00'.repeat(32) })}\n`);
  });
  await new Promise<void>((resolve) => server.listen(name, resolve));
  t.teardown(() => {
    for (const socket of connections) socket.destroy();
    server.close();
  });
  const secret = 'ab'.repeat(32);
  const supervisor = new FfmpegSupervisor(undefined, new SpawnerConnection({ name, secret }));
  const child = supervisor.spawn('ffmpeg', ['-i', 'rtmp://host/app/STREAMKEY123']);
  child.write(Buffer.from('MEDIA456'));
  await child.closed;
  t.equal(child.exitCode, 127, 'it did not start');
  const all = Buffer.concat(heard).toString();
  t.ok(all.length > 0, 'the stranger heard the first line');
  for (const word of ['STREAMKEY123', 'MEDIA456', secret, 'ffmpeg']) t.notOk(all.includes(word), `nothing of ${word}`);
});

t.test("ffmpeg's pipes 3 and 4 are blocking, as pipes were: it never polls them", async (t) => {
  const { supervisor } = ownSpawner(t);
  const child = supervisor.spawn('sleep', ['30'], undefined, 'video');
  t.teardown(() => child.kill());
  const pid = await child.started;
  for (const fd of [0, 1, 2, 3, 4]) {
    const flags = parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    t.equal(flags & 0o4000, 0, `descriptor ${fd} has no O_NONBLOCK`);
  }
});
