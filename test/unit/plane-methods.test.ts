import t from 'tap';
import {
  answerCall,
  answerTypedCall,
  checkResult,
  HOLDER_METHODS,
  oldestFirst,
  type HolderCalls,
} from '../../src/plane/methods.js';

/** A holder that records its calls and answers nothing. */
function recorder(): { holder: HolderCalls; calls: [string, unknown[]][] } {
  const calls: [string, unknown[]][] = [];
  const holder = Object.fromEntries(
    Object.keys(HOLDER_METHODS).map((m) => [m, async (...args: unknown[]) => void calls.push([m, args])]),
  ) as unknown as HolderCalls;
  return { holder, calls };
}

t.test('a call that arrives is checked against the table before the holder sees it', async (t) => {
  const { holder, calls } = recorder();
  await answerCall(holder, 'setMuted', ['m1', true]);
  await answerCall(holder, 'soundOn', ['m1', { soundFile: 'chime.wav', loop: true }]);
  t.same(calls, [
    ['setMuted', ['m1', true]],
    ['soundOn', ['m1', { soundFile: 'chime.wav', loop: true }]],
  ]);
  await t.rejects(answerCall(holder, 'launch', []), /no holder method launch/);
  await t.rejects(answerCall(holder, 'toString', []), /no holder method toString/, 'not a method of any object');
  await t.rejects(answerCall(holder, 'setMuted', ['m1', 'yes']));
  await t.rejects(answerCall(holder, 'soundOn', ['m1', { soundFile: 'chime.wav', gain: 2 }]), 'an unknown field');
  await t.rejects(answerCall(holder, 'startup', [{ streamName: '../x', rtmpUrl: 'rtmp://h/a' }]));
  t.equal(calls.length, 2, 'the holder saw none of them');
});

t.test('a call from the main thread to a worker is dispatched as typed, its arguments not parsed again', async (t) => {
  const { holder, calls } = recorder();
  // Parsed once where it entered (a REST body by its route's schema): the worker takes it as it is.
  const startup = { streamName: 'cam', rtmpUrl: 'rtmp://h/a', rtmpTransponderFullUrl: true, width: 640 };
  await answerTypedCall(holder, 'startup', [startup, 'm1']);
  t.equal(calls.length, 1);
  t.equal(calls[0]![0], 'startup');
  t.equal(calls[0]![1][0], startup, 'the very request, not a copy a parse made');
  t.same(calls[0]![1], [startup, 'm1']);
  // What the dispatch needs is still checked: a method of the table, arguments as a list.
  await t.rejects(answerTypedCall(holder, 'launch', []), /no holder method launch/);
  await t.rejects(answerTypedCall(holder, 'toString', []), /no holder method toString/, 'not a method of any object');
  await t.rejects(answerTypedCall(holder, '__proto__', []), /no holder method __proto__/);
  await t.rejects(answerTypedCall(holder, 'setMuted', { 0: 'm1', 1: true }), /setMuted: its arguments are not a list/);
  t.equal(calls.length, 1, 'the holder saw none of them');
});

t.test('a result that comes back is checked against the table', async (t) => {
  t.same(checkResult('unpublish', true), true);
  t.throws(() => checkResult('unpublish', 'yes'));
  t.throws(() => checkResult('find', [{ mediaSessionId: 'm1' }]), 'a push missing its fields');
  t.throws(() => checkResult('publish', { id: 'p', answer: 'v=0', secret: 'x' }), 'a field the table does not know');
  const snapshot = checkResult('snapshot', new Uint8Array([0xff, 0xd8]));
  t.ok(Buffer.isBuffer(snapshot), 'a snapshot comes back a Buffer, as it crosses threads as a Uint8Array');
});

t.test('lists gathered from several holders are joined oldest first', async (t) => {
  const a = { createdAt: '2026-01-01T00:00:02.000Z', id: 'a' };
  const b = { createdAt: '2026-01-01T00:00:01.000Z', id: 'b' };
  const c = { createdAt: '2026-01-01T00:00:03.000Z', id: 'c' };
  t.same(oldestFirst([[a, c], [], [b]]), [b, a, c]);
});
