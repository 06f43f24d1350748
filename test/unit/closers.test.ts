import t from 'tap';
import pino from 'pino';
import { Closers } from '../../src/gateway/closers.js';

t.test('the parts close in reverse of their making, once, however often asked', async (t) => {
  const closed: string[] = [];
  const closers = new Closers(pino({ level: 'silent' }));
  closers.add('http', () => void closed.push('http'));
  closers.add('plane', async () => {
    await new Promise((done) => setImmediate(done));
    closed.push('plane');
  });
  closers.add('signalling', () => void closed.push('signalling'));
  await Promise.all([closers.close(), closers.close()]);
  await closers.close();
  t.same(closed, ['signalling', 'plane', 'http']);
});

t.test('a part that fails to close is logged by name and the others still close', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const closed: string[] = [];
  const closers = new Closers(log);
  closers.add('http', () => void closed.push('http'));
  closers.add('plane', () => Promise.reject(new Error('worker gone')));
  closers.add('keepers', () => {
    throw new Error('store gone');
  });
  await closers.close();
  t.same(closed, ['http']);
  t.same(
    lines.map((line) => line.part),
    ['keepers', 'plane'],
  );
});
