import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { GatewayError } from '../../src/core/errors.js';
import { DRAINING, NodeCalls, NodeDraining } from '../../src/cluster/node-calls.js';
import type { RoutedCalls } from '../../src/plane/methods.js';
import { Sealer } from '../../src/security/seal.js';

// Calls between the nodes of a cluster, over real HTTP on loopback: the node-to-node methods are
// checked like the plane's, and a draining node is told apart by a flag that nodes of this release
// read, while its refusal still reads as nodes of the previous release expect (a rolling deploy
// has nodes of both).

const SECRET = 'cluster-secret-for-node-calls-test';

/** Node `id` answering calls at a loopback URL with `answer` (the sealed body in, the sealed reply out). */
async function node(
  t: Test,
  id: string,
  answer: (sealed: unknown) => Promise<string>,
): Promise<{ id: string; url: string }> {
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      answer((JSON.parse(body) as { sealed: unknown }).sealed).then(
        (sealed) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sealed })),
        (error: Error) => response.writeHead(401).end(JSON.stringify({ error: error.message })),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { id, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const nothingRouted = {} as RoutedCalls;

t.test(
  'a draining node refuses a placed publish: this release reads the flag, the previous one the code and message',
  async (t) => {
    const answering = new NodeCalls(SECRET, 'n2');
    const handOvers: string[] = [];
    const own = {
      publish: async (): Promise<never> => {
        throw new NodeDraining('it takes no new publish');
      },
      handOver: async (name: string) => void handOvers.push(name),
    };
    let rawReply: unknown;
    const sealer = new Sealer(SECRET, 'calls between nodes');
    const n2 = await node(t, 'n2', async (sealed) => {
      const reply = await answering.answer(nothingRouted, sealed, own);
      rawReply = sealer.open(reply);
      return reply;
    });
    const calling = new NodeCalls(SECRET, 'n1');

    const error: unknown = await calling.publish(n2, 'cam', 'v=0\r\n').then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(error instanceof NodeDraining, 'this release: a NodeDraining, placed elsewhere by the caller');
    t.equal((error as GatewayError).code, 'unavailable');
    const wire = (rawReply as { error: { code: string; message: string; draining?: boolean } }).error;
    t.equal(wire.draining, true, 'the reply carries the flag');
    t.equal(wire.code, 'unavailable', 'a node of the previous release reads the code it knows');
    t.ok(wire.message.includes(DRAINING), 'and the message it looks for');

    await calling.handOver(n2, 'cam');
    t.same(handOvers, ['cam'], 'handOver: a node-to-node method of the table, its result checked');
    await t.rejects(
      calling.handOver(n2, ''),
      { code: 'invalid_request' },
      'its arguments are checked where they arrive',
    );
    await t.rejects(
      calling.call(n2, 'close' as 'terminate', []),
      { code: 'invalid_request', message: /close is not answered for another node/ },
      'close is never answered for another node',
    );
  },
);

t.test('a draining refusal from a node of the previous release (no flag) is read as draining too', async (t) => {
  const sealer = new Sealer(SECRET, 'calls between nodes');
  // The previous release answered with the code and the message alone.
  const old = await node(t, 'old', async () =>
    sealer.seal({
      error: {
        name: 'GatewayError',
        message: `${DRAINING}: it takes no new publish`,
        code: 'unavailable',
        retryAfterS: 5,
      },
    }),
  );
  const calling = new NodeCalls(SECRET, 'n1');
  const error: unknown = await calling.publish(old, 'cam', 'v=0\r\n').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error instanceof NodeDraining, 'read as draining');
  t.equal((error as Error).message, `${DRAINING}: it takes no new publish`, 'its message unchanged');

  const other = await node(t, 'other', async () =>
    sealer.seal({ error: { name: 'GatewayError', message: 'the gateway is at its limit', code: 'unavailable' } }),
  );
  const busy: unknown = await calling.publish(other, 'cam', 'v=0\r\n').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(busy instanceof GatewayError && !(busy instanceof NodeDraining), 'another 503 is not a draining node');
});

t.test(
  'a call envelope with a field a later release adds is still answered; a reply that is not one is refused',
  async (t) => {
    const sealer = new Sealer(SECRET, 'calls between nodes');
    const answering = new NodeCalls(SECRET, 'n2');
    const handOvers: string[] = [];
    const own = {
      publish: async () => ({ id: 'p', answer: 'v=0' }),
      handOver: async (name: string) => void handOvers.push(name),
    };
    const call = {
      from: 'n1',
      to: 'n2',
      method: 'handOver',
      args: ['cam'],
      at: Date.now(),
      nonce: 'nonce-1',
      trace: 'added later',
    };
    const reply = sealer.open(await answering.answer(nothingRouted, sealer.seal(call), own));
    t.same(reply, {}, 'answered (a void result crosses as no value)');
    t.same(handOvers, ['cam']);
    await t.rejects(
      answering.answer(nothingRouted, sealer.seal({ ...call, nonce: 'nonce-2', at: 'now' }), own),
      { code: 'unauthorized' },
      'a call whose envelope does not read',
    );

    const garbled = await node(t, 'garbled', async () => sealer.seal({ error: 'not an error record' }));
    await t.rejects(
      new NodeCalls(SECRET, 'n1').handOver(garbled, 'cam'),
      { code: 'unavailable', message: /not a reply/ },
      'a reply that is neither a result nor an error',
    );
  },
);
