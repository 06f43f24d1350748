import type { MixerService } from '../../src/mixers/service.js';
import t from 'tap';
import { TypedEmitter } from '../../src/core/events.js';
import { followLifecycle, type LifecycleEvent } from '../../src/plane/lifecycle.js';
import type { PublisherRegistry } from '../../src/publishers/registry.js';
import type { ViewerRegistry } from '../../src/viewers/viewers.js';
import { followPushes, type PushChange } from '../../src/pushes/changes.js';
import type { PushService } from '../../src/pushes/service.js';
import type { PushState } from '../../src/pushes/states.js';

/** A push as the change stream reads it, moved through states by the test. */
function pushOf(id: string) {
  return {
    mediaSessionId: id,
    publisher: { name: 'cam' },
    destination: { redactedUrl: 'rtmp://127.0.0.1/live/***' },
    createdAt: 1000,
    createdMonoMs: 1000,
    writer: { firstFrameAt: 1016 as number | undefined },
    state: 'starting' as PushState,
    lastError: undefined as string | undefined,
    errorCode: undefined as string | undefined,
  };
}

function fakes() {
  const pushes: ReturnType<typeof pushOf>[] = [];
  class FakeService extends TypedEmitter<{ state: [unknown, PushState] }> {
    all = (): unknown[] => pushes;
    tell(push: unknown, state: PushState): void {
      this.safeEmit('state', push, state);
    }
  }
  const fake = new FakeService();
  const service = fake as unknown as PushService;
  const publishers = new TypedEmitter() as unknown as PublisherRegistry;
  const move = (push: ReturnType<typeof pushOf>, state: PushState, lastError?: string): void => {
    push.state = state;
    if (lastError !== undefined) push.lastError = lastError;
    push.errorCode = state === 'failed' ? 'destination_refused' : undefined;
    fake.tell(push, state);
  };
  return { pushes, service, publishers, move };
}

t.test('the change stream: previous state, the reason while reconnecting, in standby or failed, timings', async (t) => {
  const { pushes, service, move } = fakes();
  const changes: PushChange[] = [];
  const stop = followPushes(service, (c) => changes.push(c));
  const push = pushOf('m1');
  pushes.push(push);
  move(push, 'running');
  move(push, 'reconnecting', 'the destination closed the connection');
  move(push, 'running');
  move(push, 'standby', 'the publisher went away');
  move(push, 'running');
  move(push, 'failed', 'NetStream.Publish.BadName');
  stop();
  move(push, 'stopped');
  t.match(changes, [
    { mediaSessionId: 'm1', stream: 'cam', destination: 'rtmp://127.0.0.1/live/***', state: 'running', startupMs: 16 },
    { previous: 'running', state: 'reconnecting', reason: 'the destination closed the connection' },
    { previous: 'reconnecting', state: 'running', outageMs: Number },
    { state: 'standby', reason: 'the publisher went away' },
    { state: 'running' },
    { state: 'failed', reason: 'NetStream.Publish.BadName', errorCode: 'destination_refused' },
  ]);
  t.equal(changes.length, 6, 'nothing after stop');
  t.notOk('previous' in changes[0]!, 'the first change has no previous state');
  t.notOk('reason' in changes[2]! || 'reason' in changes[4]!, 'running tells no reason, though the last error stays');
  t.notOk('startupMs' in changes[2]!, 'startup time only for the first running');
});

t.test("lifecycle events are the change stream's: the same reasons, states and timings", async (t) => {
  const { pushes, service, publishers, move } = fakes();
  const changes: PushChange[] = [];
  const events: LifecycleEvent[] = [];
  followPushes(service, (c) => changes.push(c));
  followLifecycle(
    publishers,
    service,
    new TypedEmitter() as unknown as ViewerRegistry,
    new TypedEmitter() as unknown as MixerService,
    (e) => events.push(e),
  );
  const push = pushOf('m1');
  pushes.push(push);
  for (const [state, reason] of [
    ['running'],
    ['standby', 'the publisher went away'],
    ['resuming'],
    ['running'],
    ['reconnecting', 'reset'],
    ['failed', 'gave up'],
  ] as [PushState, string?][])
    move(push, state, reason);
  const told = changes.filter((c) => c.state !== 'resuming');
  t.same(
    events.map((e) => ('state' in e ? [e.state, e.reason, e.startupMs, e.outageMs] : [])),
    told.map((c) => [c.state, c.reason, c.startupMs, c.outageMs]),
  );
  t.same(
    events.map((e) => e.type),
    [
      'transponder.started',
      'transponder.standby',
      'transponder.restored',
      'transponder.reconnecting',
      'transponder.failed',
    ],
  );
});
