import t, { type Test } from 'tap';
import pino from 'pino';
import { GatewayError, notFound } from '../../src/core/errors.js';
import { PushKeeper } from '../../src/control/push-keeper.js';
import type { LifecycleEvent } from '../../src/plane/lifecycle.js';
import type { MediaPlane } from '../../src/plane/plane.js';
import type { PushStore, StoredPush } from '../../src/store/push-log.js';
import { Sealer } from '../../src/security/seal.js';
import type { StartupRequest } from '../../src/pushes/requests.js';

// The keeper's rules, against a plane that records what it is asked (the real plane and store are
// in the kept-pushes integration test): what is kept, what starts again, what is forgotten.

class MemoryStore implements PushStore {
  readonly pushes = new Map<string, StoredPush>();
  async all(): Promise<StoredPush[]> {
    return [...this.pushes.values()];
  }
  async ofStream(stream: string): Promise<StoredPush[]> {
    return [...this.pushes.values()].filter((p) => p.stream === stream);
  }
  async get(id: string): Promise<StoredPush | undefined> {
    return this.pushes.get(id);
  }
  async put(push: StoredPush): Promise<void> {
    this.pushes.set(push.id, push);
  }
  async remove(id: string): Promise<void> {
    this.pushes.delete(id);
  }
  async close(): Promise<void> {}
}

/** A plane of publishing streams and live pushes by id; `refuse` makes the next startups fail with that error. */
function fakePlane() {
  const publishing = new Set<string>();
  const live = new Map<string, { request: StartupRequest; muted: boolean; sound?: string }>();
  const listeners = new Set<(event: LifecycleEvent) => void>();
  const refuse: GatewayError[] = [];
  /** Pushes shown failed (a failed push stays listed). */
  const failed = new Set<string>();
  /** Pushes not listed though they run (at a node not registered again yet). */
  const unlisted = new Set<string>();
  const plane = {
    async startup(request: StartupRequest, id: string) {
      if (!publishing.has(request.streamName)) throw notFound(`stream ${request.streamName} is not publishing`);
      const error = refuse.shift();
      if (error) throw error;
      live.set(id, { request, muted: request.options?.action === 'mute', sound: request.options?.soundFile });
      return { mediaSessionId: id } as never;
    },
    async find({ streamName }: { streamName?: string }) {
      return [...live]
        .filter(([id, p]) => !unlisted.has(id) && (!streamName || p.request.streamName === streamName))
        .map(([id]) => ({ mediaSessionId: id, state: failed.has(id) ? 'failed' : 'running' })) as never;
    },
    async terminate(id: string) {
      if (!live.delete(id)) throw notFound(`no push ${id}`);
    },
    async setMuted(id: string, muted: boolean) {
      const push = live.get(id);
      if (!push) throw notFound(`no push ${id}`);
      push.muted = muted;
    },
    async soundOn(id: string, sound: { soundFile: string }) {
      const push = live.get(id);
      if (!push) throw notFound(`no push ${id}`);
      push.sound = sound.soundFile;
    },
    async soundOff(id: string) {
      if (!live.has(id)) throw notFound(`no push ${id}`);
      live.get(id)!.sound = undefined;
    },
    events(listener: (event: LifecycleEvent) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const tell = (event: LifecycleEvent): void => {
    if (event.type === 'publisher.published') publishing.add(event.stream);
    if (event.type === 'publisher.ended' || event.type === 'publisher.lost') publishing.delete(event.stream);
    listeners.forEach((l) => l(event));
  };
  return { plane: plane as unknown as MediaPlane, live, refuse, failed, unlisted, tell, listeners, publishing };
}

const sealer = new Sealer('a secret of sixteen or more', 'kept pushes');
const request: StartupRequest = { streamName: 'cam', rtmpUrl: 'rtmp://127.0.0.1/live/SKEYunit8812' };
const published = (stream = 'cam'): LifecycleEvent => ({ type: 'publisher.published', stream, publisherId: 'p2' });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

async function keeper(t: Test, store = new MemoryStore(), windowMs = 60_000) {
  const fake = fakePlane();
  const k = new PushKeeper(fake.plane, store, sealer, { windowMs, sweepMs: 20 }, pino({ level: 'silent' }));
  await k.open();
  t.teardown(() => k.close());
  return { k, store, ...fake };
}

t.test('a push is kept sealed with its audio, and starts again under its id when its stream publishes', async (t) => {
  const first = await keeper(t);
  first.tell(published());
  const info = await first.k.startup({ ...request, options: { action: 'mute' } }, 'rest:ops');
  const id = info.mediaSessionId;
  await first.k.soundOn(id, { soundFile: 'chime.wav', loop: true });
  const [stored] = first.store.pushes.values();
  t.match(stored, { id, stream: 'cam', startedBy: 'rest:ops' });
  t.notOk(JSON.stringify(stored).includes('SKEYunit8812'), 'the key is sealed');
  await first.k.close();

  // A new gateway on the same store: nothing runs until the stream publishes.
  const second = await keeper(t, first.store);
  t.equal(second.live.size, 0);
  second.tell(published('other'));
  await settle();
  t.equal(second.live.size, 0, 'another stream starts nothing');
  second.tell(published());
  await settle();
  t.match(
    second.live.get(id),
    {
      request: { rtmpUrl: request.rtmpUrl, options: { action: 'sound_on', soundFile: 'chime.wav', loop: true } },
      muted: true,
      sound: 'chime.wav',
    },
    'with the sound and the mute commanded',
  );
  second.tell(published());
  await settle();
  t.equal(second.live.size, 1, 'a push running is not started twice');
});

t.test('forgotten: terminated (live or waiting), its stream ended on purpose, failed, refused for good', async (t) => {
  const { k, store, tell, live, refuse, failed } = await keeper(t);
  tell(published());
  const a = (await k.startup(request, 'rest')).mediaSessionId;
  await k.terminate(a);
  t.equal(store.pushes.size, 0, 'terminated');
  await t.rejects(k.terminate(a), { code: 'not_found' }, 'a push neither live nor kept is unknown');

  const b = (await k.startup(request, 'rest')).mediaSessionId;
  live.clear(); // the gateway restarted: kept, not live
  await k.terminate(b);
  t.equal(store.pushes.size, 0, 'terminated while waiting for its stream');

  await k.startup(request, 'rest');
  tell({ type: 'publisher.ended', stream: 'cam', publisherId: 'p1', reason: 'WHIP session deleted' });
  await settle();
  t.equal(store.pushes.size, 0, 'its stream ended on purpose');

  tell(published());
  const c = (await k.startup(request, 'rest')).mediaSessionId;
  tell({ type: 'publisher.lost', stream: 'cam', publisherId: 'p1', reason: 'gone' });
  await settle();
  t.equal(store.pushes.size, 1, 'a stream lost keeps it');
  failed.add(c);
  tell({
    type: 'transponder.failed',
    stream: 'cam',
    mediaSessionId: c,
    destination: 'rtmp://127.0.0.1/live/***',
    state: 'failed',
    reason: 'refused',
  });
  await settle();
  t.equal(store.pushes.size, 0, 'failed');

  tell(published());
  const d = (await k.startup(request, 'rest')).mediaSessionId;
  live.clear();
  refuse.push(new GatewayError('unavailable', 'busy'));
  tell(published());
  await settle();
  t.equal(store.pushes.size, 1, 'a startup refused for now waits');
  refuse.push(new GatewayError('invalid_request', 'the destination is not allowed', 'rtmpUrl'));
  tell(published());
  await settle();
  t.equal(store.pushes.size, 0, `refused for good (${d})`);
});

t.test(
  'a kept push its destination does not take when started again (still busy, restarting) is tried again, then forgotten after 8 attempts',
  async (t) => {
    const store = new MemoryStore();
    const fake = fakePlane();
    const k = new PushKeeper(
      fake.plane,
      store,
      sealer,
      { windowMs: 60_000, sweepMs: 20, retryMs: 5 },
      pino({ level: 'silent' }),
    );
    await k.open();
    t.teardown(() => k.close());
    fake.tell(published());
    const id = (await k.startup(request, 'rest')).mediaSessionId;
    fake.live.clear(); // the stream moved, or the gateway restarted
    fake.refuse.push(
      new GatewayError('destination_refused', 'push failed to start: NetStream.Publish.BadName: Already publishing'),
    );
    fake.refuse.push(new GatewayError('destination_unreachable', 'push failed to start: connect ECONNREFUSED'));
    fake.tell(published());
    const deadline = Date.now() + 5000;
    while (!fake.live.has(id) && Date.now() < deadline) await settle();
    t.ok(fake.live.has(id), 'started on the third attempt, under its id');
    t.equal(store.pushes.size, 1, 'kept all along');

    fake.live.clear();
    for (let i = 0; i < 9; i++) fake.refuse.push(new GatewayError('destination_refused', 'NetStream.Publish.BadName'));
    fake.tell(published());
    while (store.pushes.size && Date.now() < deadline + 10_000) await settle();
    t.equal(store.pushes.size, 0, 'a destination that never takes it: forgotten after the attempts');
    t.equal(fake.refuse.length, 0, 'nine attempts: the first and eight more');
  },
);

t.test(
  'a push failed at the node its stream left, while it runs on under its id where the stream went, stays kept',
  async (t) => {
    const { k, store, tell, failed } = await keeper(t);
    tell(published());
    const id = (await k.startup(request, 'rest')).mediaSessionId;
    // The plane (every node's pushes) lists it running; the instance that failed is another node's.
    tell({
      type: 'transponder.failed',
      stream: 'cam',
      mediaSessionId: id,
      destination: 'rtmp://127.0.0.1/live/***',
      state: 'failed',
      reason: 'the destination already has this stream',
    });
    await settle();
    t.equal(store.pushes.size, 1, 'still kept');
    failed.add(id);
    tell({
      type: 'transponder.failed',
      stream: 'cam',
      mediaSessionId: id,
      destination: 'rtmp://127.0.0.1/live/***',
      state: 'failed',
      reason: 'refused',
    });
    await settle();
    t.equal(store.pushes.size, 0, 'failed everywhere: forgotten');
  },
);

t.test(
  'Redis back empty: the pushes that run are written again, those at a node not back yet once it is',
  async (t) => {
    const store = new MemoryStore();
    const fake = fakePlane();
    const k = new PushKeeper(
      fake.plane,
      store,
      sealer,
      { windowMs: 60_000, sweepMs: 20, nodesBackMs: 50 },
      pino({ level: 'silent' }),
    );
    await k.open();
    t.teardown(() => k.close());
    fake.tell(published());
    fake.tell(published('far'));
    const here = (await k.startup(request, 'rest')).mediaSessionId;
    const far = (await k.startup({ ...request, streamName: 'far' }, 'rest')).mediaSessionId;
    const ended = (await k.startup({ ...request, streamName: 'far' }, 'rest')).mediaSessionId;
    store.pushes.clear();
    fake.unlisted.add(far); // its node has not heartbeated since Redis came back
    await fake.plane.terminate(ended); // ended by another node meanwhile
    await k.rewrite();
    t.same([...store.pushes.keys()], [here], 'at once: the push found running');
    fake.unlisted.clear();
    const deadline = Date.now() + 5000;
    while (!store.pushes.has(far) && Date.now() < deadline) await settle();
    t.ok(store.pushes.has(far), 'once every node is back: the push running at the node that came back last');
    t.notOk(store.pushes.has(ended), 'a push no node runs is not written');
  },
);

t.test('a kept push whose stream does not come back within the window is forgotten', async (t) => {
  const { k, store, live, tell } = await keeper(t, new MemoryStore(), 60);
  tell(published());
  await k.startup(request, 'rest');
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.equal(store.pushes.size, 1, 'live, it stays');
  live.clear();
  const until = Date.now() + 2000;
  while (store.pushes.size && Date.now() < until) await settle();
  t.equal(store.pushes.size, 0, 'away beyond the window, forgotten');
});

t.test('a push that cannot be kept is ended and refused with 503', async (t) => {
  const store = new MemoryStore();
  store.put = async () => {
    throw new Error('ENOSPC');
  };
  const { k, live, tell } = await keeper(t, store);
  tell(published());
  await t.rejects(k.startup(request, 'rest'), { code: 'unavailable', message: /could not be kept \(ENOSPC\)/ });
  t.equal(live.size, 0, 'nothing left running');
});

t.test('closed, it no longer follows the plane: a gateway stopping forgets nothing', async (t) => {
  const { k, store, tell, listeners } = await keeper(t);
  tell(published());
  await k.startup(request, 'rest');
  await k.close();
  t.equal(listeners.size, 0);
  tell({ type: 'publisher.ended', stream: 'cam', publisherId: 'p1', reason: 'gateway shutting down' });
  t.equal(store.pushes.size, 1);
});
