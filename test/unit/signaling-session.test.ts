import { EventEmitter } from 'node:events';
import t from 'tap';
import pino from 'pino';
import type { WebSocket } from 'ws';
import { parseConfig } from '../../src/config/load.js';
import { destinationChecks } from '../../src/control/destination-checks.js';
import type { MediaPlane, PublishHandlers } from '../../src/plane/plane.js';
import { createAccessControl } from '../../src/security/access.js';
import { SignalingSession } from '../../src/signaling/session.js';
import { CaptionFlood } from '../../src/captions/flood.js';
import { IDLE_CLOSE_CODE } from '../../src/signaling/protocol.js';
import { waitFor } from '../../kit/processes.js';

/** The session's side of a WebSocket: what it sends is kept, what the client sends is emitted. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  readonly sent: any[] = [];
  closedWith: number | undefined;
  send(text: string): void {
    this.sent.push(JSON.parse(text));
  }
  close(code: number): void {
    this.closedWith = code;
    this.readyState = 3;
    this.emit('close');
  }
  client(message: object): void {
    this.emit('message', Buffer.from(JSON.stringify(message)), false);
  }
}

/** A plane that records publishes and unpublishes; each publish is told publishing at once. */
function recordingPlane() {
  const calls: string[] = [];
  const handlers = new Map<string, PublishHandlers>();
  let ids = 0;
  const plane = {
    watch: () => () => {},
    async publish(name: string, _offer: string, h: PublishHandlers) {
      const id = `p${++ids}`;
      calls.push(`publish ${name} ${id}`);
      handlers.set(id, h);
      setImmediate(() => h.publishing?.());
      return { id, answer: 'v=0' };
    },
    async unpublish(name: string, id: string, _reason: string, lost = false) {
      calls.push(`unpublish ${name} ${id}${lost ? ' lost' : ''}`);
      handlers.get(id)?.closed?.('replaced', lost);
      return true;
    },
  } as unknown as MediaPlane;
  return { plane, calls, handlers };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

/** A session on a fake socket, over a recording plane, with the default configuration. */
function openSession(idleTimeoutMs?: number) {
  const config = parseConfig({ webrtc_ice_addresses: ['127.0.0.1'] });
  const recorded = recordingPlane();
  const socket = new FakeSocket();
  new SignalingSession(
    socket as unknown as WebSocket,
    recorded.plane,
    destinationChecks(config, () => Promise.reject(new Error('no checks here'))),
    createAccessControl(config),
    { flood: new CaptionFlood(), channel: false },
    ['H264', 'AV1'],
    '127.0.0.1',
    pino({ level: 'silent' }),
    idleTimeoutMs,
  );
  return { socket, ...recorded };
}

t.test(
  'a session that publishes nothing within the idle timeout is closed with the idle code; one that published is kept',
  async (t) => {
    // Timers of one duration fire in the order they were set: once the idle session's has fired, the
    // publishing session's (set first) would have fired too, had the publish not cleared it.
    const publishing = openSession(200);
    const idle = openSession(200);
    publishing.socket.client({ type: 'publish', requestId: '1', name: 'cam', sdp: 'v=0' });
    await waitFor('the idle session to be closed', () => idle.socket.closedWith !== undefined, 5000);
    t.equal(idle.socket.closedWith, IDLE_CLOSE_CODE);
    t.equal(publishing.socket.closedWith, undefined, 'the publishing session stays open');
    t.match(
      publishing.socket.sent.find((m) => m.type === 'answer'),
      { requestId: '1' },
    );
  },
);

t.test(
  'a publish of a name the session already publishes takes over: the old one is lost (its pushes wait), the client is told nothing ended',
  async (t) => {
    const { socket, calls } = openSession();
    socket.client({ type: 'publish', requestId: '1', name: 'cam', sdp: 'v=0' });
    await settle();
    socket.client({ type: 'publish', requestId: '2', name: 'cam', sdp: 'v=0' });
    await settle();
    t.same(calls, ['publish cam p1', 'unpublish cam p1 lost', 'publish cam p2']);
    t.same(
      socket.sent.map((m) => [m.type, m.requestId ?? m.status]),
      [
        ['hello', undefined],
        ['answer', '1'],
        ['status', 'PUBLISHING'],
        ['answer', '2'],
        ['status', 'PUBLISHING'],
      ],
      'no UNPUBLISHED for the publish that was replaced',
    );
    t.match(socket.sent[0], { type: 'hello', videoCodecs: ['H264', 'AV1'] }, 'hello tells the video codecs it takes');

    socket.client({ type: 'unpublish', name: 'cam' });
    await settle();
    t.equal(calls.at(-1), 'unpublish cam p2', 'unpublish ends the current publish, on purpose');
    t.match(socket.sent.at(-1), { type: 'status', status: 'UNPUBLISHED' });

    socket.emit('close');
    await settle();
    t.equal(calls.length, 4, 'a session closed after its stream ended unpublishes nothing more');
  },
);

t.test('a malformed message is answered under its requestId, naming the field', async (t) => {
  const { socket, calls } = openSession();
  socket.client({
    type: 'publish',
    requestId: 'r7',
    name: 'cam',
    sdp: 'v=0',
    destinations: [{ id: 'x', rtmpUrl: 'rtmp://h/a' }],
    rtmpUrl: 'rtmp://h/a',
  });
  socket.emit('message', Buffer.from('{"requestId": 5'), false);
  await settle();
  t.match(socket.sent[1], { type: 'error', requestId: 'r7', code: 'invalid_request', field: 'destinations' });
  t.match(socket.sent[2], { type: 'error', code: 'invalid_request', field: 'message' });
  t.notOk(
    'requestId' in socket.sent[2] && socket.sent[2].requestId !== undefined,
    'no requestId when none could be read',
  );
  t.same(calls, [], 'nothing was published');
});

t.test(
  'a publisher the gateway lost is told UNPUBLISHED with lost: true; one ended on purpose without it',
  async (t) => {
    const { socket, handlers } = openSession();
    socket.client({ type: 'publish', requestId: '1', name: 'a', sdp: 'v=0' });
    socket.client({ type: 'publish', requestId: '2', name: 'b', sdp: 'v=0' });
    await settle();
    handlers.get('p1')!.closed!('no media for 5000 ms', true);
    handlers.get('p2')!.closed!('ended by the REST API', false);
    const unpublished = socket.sent.filter((m) => m.status === 'UNPUBLISHED');
    t.same(unpublished, [
      { type: 'status', name: 'a', status: 'UNPUBLISHED', info: 'no media for 5000 ms', lost: true },
      { type: 'status', name: 'b', status: 'UNPUBLISHED', info: 'ended by the REST API' },
    ]);
  },
);
