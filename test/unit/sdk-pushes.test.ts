import t from 'tap';
import pino from 'pino';
import { DEFAULT_RECONNECT, mayReconnect, reconnectDelay } from '../../sdk/src/backoff.js';
import { GatewayError } from '../../src/core/errors.js';
import type { MediaPlane } from '../../src/plane/plane.js';
import type { PushInfo } from '../../src/pushes/info.js';
import type { DestinationMessage } from '../../src/signaling/protocol.js';
import { destinationState, StreamPushes } from '../../src/signaling/stream-pushes.js';
import { parseDestination } from '../../src/links/destination.js';
import type { PushChange } from '../../src/pushes/changes.js';

t.test(
  'the SDK reconnects after waits that grow x2 from 0.5 s to 10 s, lengthened by up to 25 % at random',
  async (t) => {
    t.same(
      [1, 2, 3, 4, 5, 6, 7].map((n) => reconnectDelay(DEFAULT_RECONNECT, n, 0)),
      [500, 1000, 2000, 4000, 8000, 10000, 10000],
    );
    t.same(
      [1, 6].map((n) => reconnectDelay(DEFAULT_RECONNECT, n, 0.999)),
      [625, 12498],
    );
    t.ok(mayReconnect(DEFAULT_RECONNECT, 10_000), 'by default it never gives up');
    const three = { ...DEFAULT_RECONNECT, maxAttempts: 3 };
    t.same(
      [1, 2, 3, 4].map((n) => mayReconnect(three, n)),
      [true, true, true, false],
    );
  },
);

t.test("a destination is live only while its push runs the publisher's media", async (t) => {
  t.same(
    (['starting', 'running', 'standby', 'resuming', 'reconnecting', 'stopping', 'stopped', 'failed'] as const).map(
      destinationState,
    ),
    ['starting', 'live', 'standby', 'standby', 'reconnecting', 'stopped', 'stopped', 'failed'],
  );
});

/** A plane whose startup answers as the test says, and which tells changes when the test calls `change`. */
function fakePlane(startup: (rtmpUrl: string) => Promise<PushInfo>) {
  const pushes: PushInfo[] = [];
  const terminated: string[] = [];
  const plane = {
    async find(filter: { rtmpUrl?: string }) {
      return pushes.filter((p) => p.rtmpUrl === filter.rtmpUrl);
    },
    async startup(request: { rtmpUrl: string }) {
      const push = await startup(request.rtmpUrl);
      pushes.push({ ...push, rtmpUrl: request.rtmpUrl });
      return push;
    },
    async terminate(id: string) {
      terminated.push(id);
    },
  } as unknown as MediaPlane;
  return { plane, pushes, terminated };
}

const KEY = 'secret-stream-key-4242';
const destination = (url: string) => parseDestination(url, 'cam', { prefix: 'rtmp_', fullUrl: true }, 'rtmpUrl');
const running = (id: string): PushInfo => ({
  mediaSessionId: id,
  streamName: 'rtmp_cam',
  sourceStreamName: 'cam',
  rtmpUrl: 'rtmp://127.0.0.1/live/***',
  width: 0,
  height: 0,
  captions: 'roll-up',
  resolutionChanges: 0,
  muted: false,
  soundEnabled: false,
  state: 'running',
  reconnectAttempt: 0,
  transcoding: false,
  createdAt: '',
  counters: {
    packetsSent: 0,
    bytesSent: 0,
    frames: 0,
    drops: 0,
    sheds: 0,
    reconnects: 0,
    framesLost: 0,
    framesDropped: 0,
    framesDiscarded: 0,
    audioPacketsDiscarded: 0,
    audioDiscardedMs: 0,
    lagMs: 0,
    outputBytes: 0,
    acknowledgedBytes: 0,
  },
});

t.test(
  'each destination is told starting, then live, by its id and masked URL; later changes of its push follow',
  async (t) => {
    const { plane } = fakePlane(async () => running('m1'));
    const told: DestinationMessage[] = [];
    const pushes = new StreamPushes('cam', plane, (m) => told.push(m), pino({ level: 'silent' }));
    pushes.add(
      { id: 'yt', rtmpUrl: `rtmp://127.0.0.1/live/${KEY}`, rtmpTransponderFullUrl: true },
      destination(`rtmp://127.0.0.1/live/${KEY}`),
    );
    t.same(told, [], 'nothing before the stream publishes');
    pushes.publishing();
    await new Promise((r) => setTimeout(r, 10));
    t.match(told, [
      { type: 'destination', name: 'cam', id: 'yt', state: 'starting' },
      { id: 'yt', state: 'live', mediaSessionId: 'm1' },
    ]);
    const change = (c: Omit<PushChange, 'stream' | 'destination'>): void =>
      pushes.onChange({ stream: 'cam', destination: 'rtmp://127.0.0.1/live/***', ...c });
    change({ mediaSessionId: 'm1', state: 'reconnecting', reason: 'connection reset' });
    change({ mediaSessionId: 'other', state: 'failed' });
    change({ mediaSessionId: 'm1', state: 'standby', reason: 'the publisher went away: its connection failed' });
    change({ mediaSessionId: 'm1', state: 'running' });
    t.match(
      told.slice(2),
      [
        { state: 'reconnecting', reason: 'connection reset' },
        { state: 'standby', reason: 'the publisher went away: its connection failed' },
        { state: 'live' },
      ],
      "only its own push's changes, each with its reason",
    );
    t.notOk(JSON.stringify(told).includes(KEY), 'the stream key is never sent back');
    t.match(told[0]!.url, /\/live\/\*\*\*$/);
  },
);

t.test(
  'a refused destination is told failed with the code and reason; a destination removed while it starts ends its push',
  async (t) => {
    let release: (() => void) | undefined;
    const { plane, terminated } = fakePlane(async (url) => {
      if (url.includes('refused'))
        throw new GatewayError('destination_unreachable', 'connect ECONNREFUSED 127.0.0.1:1935');
      await new Promise<void>((r) => (release = r));
      return running('slow');
    });
    const told: DestinationMessage[] = [];
    const pushes = new StreamPushes('cam', plane, (m) => told.push(m), pino({ level: 'silent' }));
    pushes.add({ id: 'a', rtmpUrl: 'rtmp://127.0.0.1/refused' }, destination('rtmp://127.0.0.1/refused/x'));
    pushes.add({ id: 'b', rtmpUrl: 'rtmp://127.0.0.1/slow' }, destination('rtmp://127.0.0.1/slow/x'));
    pushes.publishing();
    await new Promise((r) => setTimeout(r, 10));
    t.match(
      told.find((m) => m.id === 'a' && m.state === 'failed'),
      { code: 'destination_unreachable', reason: /ECONNREFUSED/ },
    );
    await pushes.remove('b');
    t.match(told.at(-1), { id: 'b', state: 'stopped' });
    release!();
    await new Promise((r) => setTimeout(r, 10));
    t.same(terminated, ['slow'], 'the push it started meanwhile is ended');
    t.notOk(
      told.some((m) => m.id === 'b' && m.state === 'live'),
      'and never told live',
    );
    await t.rejects(pushes.remove('b'), { code: 'not_found', field: 'id' });
    t.throws(() => pushes.add({ id: 'a', rtmpUrl: 'rtmp://x/y' }, destination('rtmp://127.0.0.1/y/z')), {
      code: 'conflict',
      field: 'destination.id',
    });
  },
);

t.test(
  "an SDK destination's platform and picture reach the push's startup as REST's fields, without its id",
  async (t) => {
    const asked: unknown[] = [];
    const plane = {
      async find() {
        return [];
      },
      async startup(request: unknown) {
        asked.push(request);
        return running('m1');
      },
    } as unknown as MediaPlane;
    const pushes = new StreamPushes('cam', plane, () => {}, pino({ level: 'silent' }));
    const url = `rtmp://127.0.0.1/live/${KEY}`;
    pushes.add(
      {
        id: 'tiktok',
        rtmpUrl: url,
        rtmpTransponderFullUrl: true,
        platform: 'tiktok',
        aspect: '9:16',
        fit: 'blur',
        videoBitrate: 3000,
      },
      destination(url),
    );
    pushes.publishing();
    await new Promise((r) => setTimeout(r, 10));
    t.same(asked, [
      {
        streamName: 'cam',
        rtmpUrl: url,
        rtmpTransponderFullUrl: true,
        platform: 'tiktok',
        aspect: '9:16',
        fit: 'blur',
        videoBitrate: 3000,
      },
    ]);
  },
);
