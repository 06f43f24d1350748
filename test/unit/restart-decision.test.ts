import t from 'tap';
import { GatewayError, type ErrorCode } from '../../src/core/errors.js';
import { restartDecision } from '../../src/control/restart.js';

// What becomes of a kept push that did not start again when its stream published: the rule alone,
// of the error and the attempt (the keeper that follows it is in the kept-pushes unit test).

const refused = (code: ErrorCode, message = `${code} now`): GatewayError => new GatewayError(code, message);

t.test('a destination that did not take it: tried again, the wait doubling from the first to 30 s', async (t) => {
  const error = refused('destination_refused', 'NetStream.Publish.BadName: Already publishing');
  t.same(restartDecision(error, 1), {
    action: 'retry',
    attempt: 1,
    inMs: 2000,
    reason: 'NetStream.Publish.BadName: Already publishing',
  });
  t.same(
    [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => restartDecision(error, attempt)),
    [2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000].map((inMs, i) => ({
      action: 'retry',
      attempt: i + 1,
      inMs,
      reason: 'NetStream.Publish.BadName: Already publishing',
    })),
    'two seconds first, doubling, never more than 30 s',
  );
  t.same(
    [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => (restartDecision(error, attempt, 5) as { inMs: number }).inMs),
    [5, 10, 20, 40, 80, 160, 320, 640],
    'from the first wait the keeper is told',
  );
  t.equal(
    (restartDecision(error, 8, 10_000) as { inMs: number }).inMs,
    30_000,
    'a long first wait is held to 30 s too',
  );
  t.same(
    restartDecision(refused('destination_unreachable', 'connect ECONNREFUSED'), 3),
    { action: 'retry', attempt: 3, inMs: 8000, reason: 'connect ECONNREFUSED' },
    'unreachable is the same as refused',
  );
});

t.test('a destination that never takes it: forgotten past the eighth attempt', async (t) => {
  const error = refused('destination_unreachable', 'connect ETIMEDOUT');
  t.equal(restartDecision(error, 8).action, 'retry', 'the eighth is still made');
  t.same(restartDecision(error, 9), {
    action: 'forget',
    why: 'its destination did not take it in 8 attempts: connect ETIMEDOUT',
  });
  t.equal(restartDecision(error, 50).action, 'forget');
});

t.test(
  'not now (stream gone, gateway loaded, destination already pushed to): it waits for the next publish',
  async (t) => {
    for (const code of ['not_found', 'unavailable', 'conflict', 'too_many_requests'] as const) {
      t.same(
        restartDecision(refused(code, `${code}: not now`), 1),
        { action: 'wait', reason: `${code}: not now` },
        code,
      );
      t.equal(restartDecision(refused(code), 20).action, 'wait', `${code}: however many attempts were made`);
    }
  },
);

/** Every code the gateway's errors carry, with what a kept push refused with it comes to (a code added must be placed here). */
const BY_CODE: Record<ErrorCode, 'retry' | 'wait' | 'forget'> = {
  destination_refused: 'retry',
  destination_unreachable: 'retry',
  not_found: 'wait',
  unavailable: 'wait',
  conflict: 'wait',
  too_many_requests: 'wait',
  invalid_request: 'forget',
  not_supported: 'forget',
  unauthorized: 'forget',
  forbidden: 'forget',
  method_not_allowed: 'forget',
  not_acceptable: 'forget',
  request_timeout: 'forget',
  payload_too_large: 'forget',
  uri_too_long: 'forget',
  unsupported_media_type: 'forget',
  headers_too_large: 'forget',
  insufficient_storage: 'forget',
  internal: 'forget',
};

t.test('every error code comes to one decision', async (t) => {
  for (const [code, action] of Object.entries(BY_CODE) as [ErrorCode, string][])
    t.equal(restartDecision(refused(code), 1).action, action, code);
});

t.test('refused for good, or a fault: forgotten at once', async (t) => {
  for (const code of ['invalid_request', 'forbidden', 'insufficient_storage', 'internal'] as const) {
    t.same(
      restartDecision(refused(code, 'the destination is not allowed'), 1),
      { action: 'forget', why: 'it could not start again: the destination is not allowed' },
      code,
    );
  }
  t.same(restartDecision(new Error('worker gone'), 1), {
    action: 'forget',
    why: 'it could not start again: worker gone',
  });
  t.same(restartDecision('a string thrown', 1), { action: 'forget', why: 'it could not start again: a string thrown' });
  const coded = Object.assign(new Error('looks coded'), { code: 'destination_refused' });
  t.equal(restartDecision(coded, 1).action, 'forget', "only the gateway's own errors carry a code it reads");
});
