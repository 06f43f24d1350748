import t from 'tap';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { OutputSockets } from '../../src/ffmpeg/output-sockets.js';
import { FfmpegSupervisor } from '../../src/ffmpeg/supervisor.js';
import { waitFor } from '../../kit/processes.js';

/** The abstract names this process listens on (as /proc/net/unix shows them: `@` for the leading NUL, flags 00010000 for listening). */
function listeningNames(): string[] {
  return readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === '00010000' && fields[7]?.startsWith(`@webrtc-rtmp-gateway-${process.pid}-`))
    .map((fields) => fields[7]!);
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
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
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
  const ffmpeg = await supervisor.spawnReading(
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

t.test(
  'a connection of another process is never taken for a pair; a reader that throws is reported, not fatal',
  async (t) => {
    const sockets = new OutputSockets();
    t.teardown(() => sockets.close());
    const heard: string[] = [];
    const first = await sockets.pair(
      Buffer.alloc(64),
      (data) => heard.push(data.toString()),
      () => {},
    );
    t.teardown(() => {
      first.ours.destroy();
      first.theirs.destroy();
    });
    const [name] = listeningNames();
    t.ok(name, 'it listens in the abstract namespace, under its own name');

    // Another process connects and says a token of its own: it is closed, and no pair is made of it.
    const stranger = connect({ path: `\0${name!.slice(1)}` });
    stranger.on('error', () => {});
    stranger.write(Buffer.alloc(16, 7));
    await new Promise((resolve) => stranger.once('close', resolve));
    t.pass("the stranger's connection was closed");

    const errors: unknown[] = [];
    const second = await sockets.pair(
      Buffer.alloc(64),
      () => {
        throw new Error('a reader that fails');
      },
      (error) => errors.push(error),
    );
    t.teardown(() => {
      second.ours.destroy();
      second.theirs.destroy();
    });
    first.theirs.write('to the first');
    second.theirs.write('to the second');
    await waitFor('what each pair was written', () => heard.length > 0 && errors.length > 0);
    t.same(heard, ['to the first'], 'each pair carries only its own bytes');
    t.match(errors, [{ message: 'a reader that fails' }]);

    sockets.close();
    await waitFor('it listens no more', () => listeningNames().length === 0);
    first.theirs.write(' again');
    await waitFor('the pair goes on', () => heard.join('') === 'to the first again');
  },
);
