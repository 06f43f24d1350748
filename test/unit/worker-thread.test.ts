import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import pino from 'pino';
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { PUBLISHER_SLOTS, PUSH_SLOTS, Slots } from '../../src/core/slots.js';
import type { PushChange } from '../../src/pushes/changes.js';
import { WorkerThread, type ThreadOwner } from '../../src/plane/thread.js';
import { ThreadRouter } from '../../src/plane/thread-router.js';
import type { Call, WorkerMessage } from '../../src/plane/wire.js';

// A worker thread as the main thread sees it, against a fake worker: what it holds is forgotten on
// each thing's own end, and all at once when the thread dies, the plane told once.

/** A worker that records the calls posted to it; the test answers them and tells what happens. */
class FakeWorker extends EventEmitter {
  readonly calls: Call[] = [];
  postMessage(call: Call): void {
    this.calls.push(call);
  }
  async terminate(): Promise<number> {
    this.emit('exit', 1);
    return 1;
  }
  tell(message: WorkerMessage): void {
    this.emit('message', message);
  }
  /** Answers the last call with `value`. */
  reply(value: unknown): void {
    this.tell({ kind: 'reply', id: this.calls.at(-1)!.id, value });
  }
}

function setup(index = 0, slots = Slots.buffer()) {
  const fake = new FakeWorker();
  const died: string[] = [];
  const changes: PushChange[] = [];
  const records: string[] = [];
  const owner: ThreadOwner = {
    pushChanged: (_thread, change) => void changes.push(change),
    happened: () => undefined,
    died: (_thread, reason) => void died.push(reason),
  };
  const thread = new WorkerThread(index, {
    start: () => fake as unknown as Worker,
    data: { config: parseConfig({}), index, slots },
    owner,
    childRecord: { add: (pid) => void records.push(`+${pid}`), remove: (pid) => void records.push(`-${pid}`) },
    log: pino({ level: 'silent' }),
  });
  return { fake, thread, died, changes, records, slots };
}

const running = (mediaSessionId: string, state: PushChange['state'] = 'running') =>
  ({ mediaSessionId, state }) as PushChange;

t.test('each thing a thread holds is forgotten on its own end', async (t) => {
  const { fake, thread } = setup();
  const closed: [string, boolean][] = [];
  const publishing = thread.publish('cam', 'v=0', { closed: (reason, lost) => void closed.push([reason, lost]) });
  fake.reply({ id: 'p1', answer: 'v=0 answer' });
  t.same(await publishing, { id: 'p1', answer: 'v=0 answer' });
  fake.tell({ kind: 'closed', publisherId: 'p1', reason: 'unpublished', lost: false });
  t.same(closed, [['unpublished', false]], 'the publish told closed once, as the worker told it');

  fake.tell({ kind: 'push', change: running('s1') });
  t.ok(thread.hasSession('s1'), 'a push told of is held');
  fake.tell({ kind: 'push', change: running('s1', 'stopped') });
  t.notOk(thread.hasSession('s1'), 'a stopped push is not');

  const held = thread.holding('cam', async () => {
    fake.tell({ kind: 'idle', stream: 'cam' });
    t.ok(thread.holds('cam'), 'a stream with a call on its way stays held when the worker says it is idle');
  });
  await held;
  fake.tell({ kind: 'idle', stream: 'cam' });
  t.notOk(thread.holds('cam'), 'an idle stream with no call on its way is forgotten');

  thread.mixerStarted('mixer://m', 'm-stream');
  thread.mixer('mixer://m')!.inputs.add('cam');
  fake.tell({
    kind: 'event',
    event: { type: 'mixer.ended', mixer: 'mixer://m', stream: 'm-stream', reason: 'terminated' },
  } as WorkerMessage);
  t.equal(thread.mixer('mixer://m'), undefined, 'an ended mixer is forgotten with its inputs');
});

t.test('a thread that dies forgets all it held at once, kills its ffmpeg and tells the plane once', async (t) => {
  const slots = Slots.buffer();
  const publishers = new Slots(slots, PUBLISHER_SLOTS);
  const pushes = new Slots(slots, PUSH_SLOTS);
  // What the worker took for its publisher and its two pushes (one running, one failed).
  publishers.take(10);
  pushes.take(10);
  const { fake, thread, died, records } = setup(3, slots);
  const closed: [string, boolean][] = [];
  const publishing = thread.publish('cam', 'v=0', { closed: (reason, lost) => void closed.push([reason, lost]) });
  fake.reply({ id: 'p1', answer: 'a' });
  await publishing;
  await thread.holding('cam', async () => undefined);
  fake.tell({ kind: 'push', change: running('s1') });
  thread.mixerStarted('mixer://m', 'm-stream');
  const ffmpeg = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  const ended = once(ffmpeg, 'exit');
  fake.tell({ kind: 'child', op: 'add', pid: ffmpeg.pid! });
  const load = { ...thread.load, publishers: 1 };
  fake.tell({ kind: 'status', load, pushes: { running: 1, failed: 1 } });
  const pending = thread.call('streams', undefined);

  fake.emit('exit', 1);
  fake.emit('error', new Error('after the exit'));
  t.same(died, ['exited with 1'], 'the plane is told once');
  t.notOk(thread.alive);
  await t.rejects(pending, /media worker 3 exited with 1/, 'a call on its way is refused');
  await t.rejects(thread.call('streams', undefined), /media worker 3 exited with 1/, 'and any call after');
  t.same(closed, [['media worker exited with 1', true]], 'its publish is told closed, lost');
  t.notOk(thread.holds('cam'), 'its stream is forgotten');
  t.notOk(thread.hasSession('s1'), 'its push is forgotten');
  t.equal(thread.mixerCount, 0, 'its mixer is forgotten');
  t.same(await ended, [null, 'SIGKILL'], 'its ffmpeg is killed');
  t.same(records, [`+${ffmpeg.pid}`, `-${ffmpeg.pid}`], 'and no longer recorded');
  t.equal(publishers.taken, 0, "its publisher's slot is given back");
  t.equal(pushes.taken, 0, "its running push's slot is given back, not the failed one's");
});

t.test('a thread closed on purpose ends its streams, then the thread: nothing is told lost', async (t) => {
  const { fake, thread, died } = setup();
  const closed: string[] = [];
  const publishing = thread.publish('cam', 'v=0', { closed: (reason) => void closed.push(reason) });
  fake.reply({ id: 'p1', answer: 'a' });
  await publishing;
  const closing = thread.close();
  t.equal(thread.close(), closing, 'closing twice is closing once');
  t.equal(fake.calls.at(-1)!.method, 'close', 'the worker is asked to end its streams');
  fake.tell({ kind: 'closed', publisherId: 'p1', reason: 'gateway shutting down', lost: false });
  fake.reply(undefined);
  await closing;
  t.notOk(thread.alive, 'the thread has ended');
  t.same(died, [], 'no death is told');
  t.same(closed, ['gateway shutting down'], 'the publish heard its end from the worker, not a loss');
});

t.test('one thread holds a stream or a push at a time: the one that takes it takes it from the others', async (t) => {
  const router = new ThreadRouter();
  const a = setup(0);
  const b = setup(1);
  router.set(a.thread);
  router.set(b.thread);
  await router.hold('cam', a.thread, async () => undefined);
  t.equal(router.holder('stream', 'cam'), a.thread);
  await router.hold('cam', b.thread, async () => undefined);
  t.equal(router.holder('stream', 'cam'), b.thread, 'the stream moved');
  t.notOk(a.thread.holds('cam'), 'the first thread holds it no more');
  t.equal(router.threadFor('other'), a.thread, 'a new stream goes to the thread with fewer streams');

  a.fake.tell({ kind: 'push', change: running('s1') });
  router.sessionAt('s1', a.thread);
  b.fake.tell({ kind: 'push', change: running('s1') });
  router.sessionAt('s1', b.thread);
  t.equal(router.holder('session', 's1'), b.thread, 'the push is routed to the thread that told of it last');
  t.notOk(a.thread.hasSession('s1'));

  b.fake.emit('exit', 1);
  t.equal(router.holder('stream', 'cam'), undefined, "a dead thread's stream is held nowhere");
  t.equal(router.any(), a.thread, 'any call goes to a living thread');
  t.equal(router.threadFor('cam'), a.thread, 'and a new publish of the stream too');
});
