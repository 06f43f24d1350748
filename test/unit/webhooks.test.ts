import pino from 'pino';
import t from 'tap';
import type { LifecycleEvent } from '../../src/plane/lifecycle.js';
import {
  retryWaitMs,
  WebhookDispatcher,
  type DeliveryResult,
  type WebhookEndpoint,
} from '../../src/webhooks/dispatcher.js';
import { sign, signingKey, verify } from '../../src/webhooks/signature.js';
import { waitFor } from '../../kit/processes.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

// The webhook dispatcher against real HTTP endpoints on loopback: signatures, order, retries,
// timeouts, bounded queues, and endpoints independent of each other.

const SECRET = 'webhook-secret-0123456789';
const log = pino({ level: 'silent' });

function counting() {
  const results: Array<[string, DeliveryResult]> = [];
  let failedAttempts = 0;
  return {
    results,
    get failedAttempts() {
      return failedAttempts;
    },
    delivery: (endpoint: string, result: DeliveryResult) => void results.push([endpoint, result]),
    attemptFailed: () => void failedAttempts++,
  };
}

function endpoint(receiver: WebhookReceiver, overrides: Partial<WebhookEndpoint> = {}): WebhookEndpoint {
  return {
    id: 'app',
    url: receiver.url,
    events: [],
    secret: SECRET,
    timeoutMs: 2000,
    maxAttempts: 3,
    queueLimit: 100,
    ...overrides,
  };
}

const published = (stream: string): LifecycleEvent => ({
  type: 'publisher.published',
  stream,
  publisherId: `p-${stream}`,
});

t.test(
  'signatures: Standard Webhooks form; a changed body, another secret or an old timestamp is refused',
  async (t) => {
    const key = signingKey(SECRET);
    const now = Math.floor(Date.now() / 1000);
    const signature = sign(key, 'evt_1', now, '{"a":1}');
    t.match(signature, /^v1,[A-Za-z0-9+/]{43}=$/);
    t.ok(verify(key, { id: 'evt_1', timestamp: String(now), signature }, '{"a":1}'), 'verifies');
    t.ok(
      verify(key, { id: 'evt_1', timestamp: String(now), signature: `v1,bogus ${signature}` }, '{"a":1}'),
      'one of several signatures',
    );
    t.notOk(verify(key, { id: 'evt_1', timestamp: String(now), signature }, '{"a":2}'), 'another body');
    t.notOk(verify(key, { id: 'evt_2', timestamp: String(now), signature }, '{"a":1}'), 'another id');
    t.notOk(
      verify(signingKey('another-secret-0123456789'), { id: 'evt_1', timestamp: String(now), signature }, '{"a":1}'),
      'another secret',
    );
    const old = now - 600;
    t.notOk(
      verify(key, { id: 'evt_1', timestamp: String(old), signature: sign(key, 'evt_1', old, '{"a":1}') }, '{"a":1}'),
      'a replay 10 minutes later',
    );
    t.same(
      signingKey(`whsec_${Buffer.from('raw key bytes').toString('base64')}`),
      Buffer.from('raw key bytes'),
      'whsec_ secrets are base64',
    );
  },
);

t.test('waits between attempts: 1 s doubling to a minute, up to 25 % longer', async (t) => {
  t.same(
    [1, 2, 3, 7, 8].map((n) => retryWaitMs(n, () => 0)),
    [1000, 2000, 4000, 60000, 60000],
  );
  t.equal(
    retryWaitMs(1, () => 0.999999),
    1250,
  );
});

t.test('every event, in order, signed, with its id in the header and the body', async (t) => {
  const receiver = await WebhookReceiver.start(SECRET);
  t.teardown(() => receiver.stop());
  const counters = counting();
  const dispatcher = new WebhookDispatcher([endpoint(receiver)], counters, log);
  t.teardown(() => dispatcher.close());
  const streams = ['a', 'b', 'c', 'd', 'e'];
  for (const stream of streams) dispatcher.send(published(stream));
  // The receiver records a delivery before its answer reaches the dispatcher, which counts it then.
  await waitFor(
    'five deliveries, counted',
    () => receiver.delivered.length === 5 && counters.results.length === 5,
    5000,
  );
  t.same(
    receiver.delivered.map((h) => h.body.data.stream),
    streams,
    'in the order sent',
  );
  t.ok(
    receiver.received.every((h) => h.signed),
    'every request signed',
  );
  t.ok(
    receiver.received.every((h) => h.id === h.body.id && /^evt_/.test(h.id)),
    "the id in the header is the body's",
  );
  t.match(receiver.received[0]!.body, {
    type: 'publisher.published',
    time: String,
    data: { stream: 'a', publisherId: 'p-a' },
  });
  t.same(
    counters.results,
    streams.map(() => ['app', 'delivered']),
  );
});

t.test('an endpoint answering 500 gets the same delivery again, then the next', async (t) => {
  const receiver = await WebhookReceiver.start(SECRET);
  t.teardown(() => receiver.stop());
  let calls = 0;
  receiver.answer = () => (++calls === 1 ? 500 : 200);
  const counters = counting();
  const dispatcher = new WebhookDispatcher([endpoint(receiver)], counters, log, () => 0);
  t.teardown(() => dispatcher.close());
  dispatcher.send(published('a'));
  dispatcher.send(published('b'));
  await waitFor('both delivered', () => receiver.delivered.length === 2, 5000);
  t.same(
    receiver.received.map((h) => h.body.data.stream),
    ['a', 'a', 'b'],
    'a again before b',
  );
  t.equal(receiver.received[0]!.id, receiver.received[1]!.id, 'the same id on the second attempt');
  t.ok(receiver.received[1]!.at - receiver.received[0]!.at >= 950, 'after the first wait (1 s)');
  t.equal(counters.failedAttempts, 1);
});

t.test(
  'a hanging endpoint: each attempt times out, the delivery is given up, another endpoint is not held back',
  async (t) => {
    const hanging = await WebhookReceiver.start(SECRET);
    const healthy = await WebhookReceiver.start(SECRET);
    t.teardown(() => Promise.all([hanging.stop(), healthy.stop()]));
    hanging.answer = () => 'hang';
    const counters = counting();
    const dispatcher = new WebhookDispatcher(
      [endpoint(hanging, { id: 'slow', timeoutMs: 1000, maxAttempts: 2 }), endpoint(healthy, { id: 'fast' })],
      counters,
      log,
      () => 0,
    );
    t.teardown(() => dispatcher.close());
    dispatcher.send(published('a'));
    await waitFor('the healthy endpoint has it', () => healthy.delivered.length === 1, 5000);
    t.equal(counters.failedAttempts, 0, 'delivered there while the first attempt on the hanging one still waits');
    await waitFor(
      'given up on the hanging one',
      () => counters.results.some(([id, r]) => id === 'slow' && r === 'failed'),
      10000,
    );
    t.equal(hanging.received.length, 2, 'two attempts');
    t.equal(counters.failedAttempts, 2);
  },
);

t.test('a bounded queue: past its limit the oldest waiting delivery is dropped and counted', async (t) => {
  const receiver = await WebhookReceiver.start(SECRET);
  t.teardown(() => receiver.stop());
  const counters = counting();
  const dispatcher = new WebhookDispatcher([endpoint(receiver, { queueLimit: 3 })], counters, log);
  t.teardown(() => dispatcher.close());
  for (const stream of ['a', 'b', 'c', 'd', 'e', 'f']) dispatcher.send(published(stream));
  t.equal(dispatcher.pending, 4, 'the one being delivered and three waiting');
  t.equal(counters.results.filter(([, r]) => r === 'dropped').length, 2, 'two dropped');
  await waitFor('the rest delivered', () => receiver.delivered.length === 4, 5000);
  t.same(
    receiver.received.map((h) => h.body.data.stream),
    ['a', 'd', 'e', 'f'],
    'the one in flight kept, then the newest three',
  );
});

t.test('an endpoint gets only the events it asked for', async (t) => {
  const receiver = await WebhookReceiver.start(SECRET);
  t.teardown(() => receiver.stop());
  const dispatcher = new WebhookDispatcher([endpoint(receiver, { events: ['transponder.failed'] })], counting(), log);
  t.teardown(() => dispatcher.close());
  dispatcher.send(published('a'));
  dispatcher.send({
    type: 'transponder.failed',
    stream: 'a',
    mediaSessionId: 'm',
    destination: 'rtmp://host/live/***',
    state: 'failed',
    reason: 'refused',
  });
  await waitFor('one delivery', () => receiver.delivered.length === 1, 3000);
  t.equal(receiver.delivered[0]!.type, 'transponder.failed');
  t.equal(receiver.received.length, 1);
});

t.test('close aborts the request in flight and sends nothing more', async (t) => {
  const receiver = await WebhookReceiver.start(SECRET);
  t.teardown(() => receiver.stop());
  receiver.answer = () => 'hang';
  const dispatcher = new WebhookDispatcher([endpoint(receiver, { timeoutMs: 30000 })], counting(), log);
  dispatcher.send(published('a'));
  dispatcher.send(published('b'));
  await waitFor('the first request', () => receiver.received.length === 1, 2000);
  const started = Date.now();
  await dispatcher.drain(300);
  t.ok(Date.now() - started < 1000, 'drain gives up after its deadline');
  t.equal(receiver.received.length, 1, 'nothing after close');
});
