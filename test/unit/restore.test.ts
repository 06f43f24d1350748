import t from 'tap';
import { RtmpError } from '../../src/rtmp/errors.js';
import { RestorePolicy } from '../../src/pushes/restore.js';
import { classifyFailure } from '../../src/links/failures.js';

const settings = { enabled: true, attempts: 0, intervalMs: 1000 };

t.test('waits start at the interval, grow x1.5 to 2 s, and jitter only lengthens them by up to 25 %', async (t) => {
  const low = new RestorePolicy(settings, () => 0);
  t.same(
    [1, 2, 3, 4, 5].map(() => (low.next('unreachable', 'x') as { retryInMs: number }).retryInMs),
    [1000, 1500, 2000, 2000, 2000],
  );
  const high = new RestorePolicy(settings, () => 0.999999);
  t.same(
    [1, 2, 3].map(() => (high.next('unreachable', 'x') as { retryInMs: number }).retryInMs),
    [1250, 1875, 2500],
  );
  const slow = new RestorePolicy({ ...settings, intervalMs: 5000 }, () => 0);
  t.same(
    [1, 2].map(() => (slow.next('unreachable', 'x') as { retryInMs: number }).retryInMs),
    [5000, 5000],
    'a longer interval is its own ceiling',
  );
});

t.test("a refusal is tried once more, then given up with the server's reason", async (t) => {
  const policy = new RestorePolicy(settings, () => 0);
  t.match(policy.next('unreachable', 'connection lost'), { retryInMs: 1000 });
  t.match(policy.next('rejected', 'invalid stream key'), { retryInMs: 1500 });
  t.same(policy.next('rejected', 'invalid stream key'), { giveUp: 'invalid stream key' });
});

t.test(
  '"already publishing" is asked again every 0.5 s and retried as long as attempts last, counted against them as often as the usual waits',
  async (t) => {
    let now = 0;
    const policy = new RestorePolicy(
      { ...settings, attempts: 3 },
      () => 0,
      () => now,
    );
    const asks: Array<[number, number]> = [];
    let decision = policy.next('busy', 'Already publishing');
    while ('retryInMs' in decision) {
      asks.push([now, policy.attempt]);
      now += decision.retryInMs;
      decision = policy.next('busy', 'Already publishing');
    }
    t.same(
      asks.slice(0, 4),
      [
        [0, 1],
        [500, 2],
        [1000, 3],
        [1500, 4],
      ],
      'every ask shown as an attempt',
    );
    t.equal(asks.length, 9, 'asked every 0.5 s');
    t.equal(now, 4500, 'the three attempts last as long as before');
    t.same(decision, { giveUp: 'Already publishing (after 3 restore attempts)' });
  },
);

t.test('off: the first drop gives up; healthy output starts the count afresh', async (t) => {
  t.same(new RestorePolicy({ ...settings, enabled: false }).next('unreachable', 'lost'), { giveUp: 'lost' });
  const policy = new RestorePolicy(settings, () => 0);
  policy.next('unreachable', 'x');
  policy.next('unreachable', 'x');
  t.equal(policy.attempt, 2);
  policy.healthy();
  t.equal(policy.attempt, 0);
  t.match(policy.next('unreachable', 'x'), { retryInMs: 1000 });
});

t.test('failures are told apart by what the server said', async (t) => {
  t.equal(classifyFailure(new Error('connect ECONNREFUSED')), 'unreachable');
  t.equal(
    classifyFailure(new RtmpError('the destination closed the connection')),
    'unreachable',
    'no status code: the connection broke',
  );
  t.equal(classifyFailure(new RtmpError('x', 'NetStream.Publish.BadName', 'Already publishing')), 'busy');
  t.equal(classifyFailure(new RtmpError('x', 'NetStream.Publish.Rejected', 'Already has a stream')), 'busy');
  t.equal(classifyFailure(new RtmpError('x', 'NetStream.Publish.Rejected', 'invalid stream key')), 'rejected');
  t.equal(classifyFailure(new RtmpError('x', 'NetConnection.Connect.Rejected', 'no such application')), 'rejected');
});
