import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { testFixture } from '../helpers/synthetic.js';

// Mixers on a gateway of two worker threads, as an operator runs it: each mixer is placed like a
// publish, by load, and its stream is taken in the whole gateway, so that no publish of the same
// name lands in the other worker; a mixer never takes, through mixers of either worker, its own output.

const runDir = await mkdtemp(join(tmpdir(), 'gateway-mixer-workers-'));
const gateway = await GatewayProcess.start(
  join(runDir, 'gateway.log'),
  { GATEWAY_WORKERS: '2', GATEWAY_RUN_DIR: runDir },
  ['--import', 'tsx'],
  'kit/server-from-source.ts',
);
const publishers: SyntheticPublisher[] = [];
t.teardown(async () => {
  for (const publisher of publishers) await publisher.stop();
  await gateway.stop();
  await stopAllProcesses();
  await rm(runDir, { recursive: true, force: true });
});

/** Each worker's publishers (a mixer's stream is one), from /metrics, in the workers' order. */
async function publishersByWorker(): Promise<string> {
  const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text();
  return [...text.matchAll(/^gateway_load\{worker="(\d+)",measure="publishers"\} (\d+)$/gm)].map((m) => m[2]).join();
}

/** A publish of `name` from a browser-like publisher: `taken`, or why it was refused. */
async function publish(name: string): Promise<string> {
  return SyntheticPublisher.publish(testFixture(), gateway.baseUrl, name).then(
    (publisher) => (publishers.push(publisher), 'taken'),
    (error: Error) => error.message,
  );
}

const mixer = (uri: string, more: Record<string, unknown> = {}) =>
  gateway.request('POST', '/rest-api/mixer/startup', { uri, width: 320, height: 180, fps: 10, ...more });

t.test("mixers spread over the workers by load, and each mixer's stream is taken in every worker", async (t) => {
  t.equal(await publish('cam'), 'taken');
  await waitFor('the publisher told', async () => (await publishersByWorker()) === '1,0', 5000);

  t.equal((await mixer('mixer://m1')).status, 200);
  await waitFor('m1 placed', async () => (await publishersByWorker()) !== '1,0', 5000);
  t.equal(await publishersByWorker(), '1,1', 'the first mixer runs in the worker with no stream');
  const second = await mixer('mixer://m2', { localStreamName: 'show2' });
  t.equal(second.status, 200, JSON.stringify(second.body));
  await waitFor('m2 placed', async () => (await publishersByWorker()) !== '1,1', 5000);
  t.equal(await publishersByWorker(), '2,1', 'the second in the worker with no mixer');

  t.match(
    await publish('m1'),
    /answered 409: .*m1 is already publishing/,
    "a publish of the first mixer's stream is refused",
  );
  t.match(
    await publish('show2'),
    /answered 409: .*show2 is already publishing/,
    "and of the second's (its localStreamName)",
  );
  t.equal(
    (await mixer('mixer://m3', { localStreamName: 'cam' })).status,
    409,
    'a mixer whose stream is publishing is refused',
  );
  t.equal(await publishersByWorker(), '2,1', 'nothing was added by the refusals');

  // Each mixer's calls reach its worker, whatever its stream's name; inputs of the other worker come over a relay.
  t.equal(
    (await gateway.request('POST', '/rest-api/mixer/add', { uri: 'mixer://m2', remoteStreamName: 'cam' })).status,
    200,
    'cam into m2 (the same worker)',
  );
  t.equal(
    (await gateway.request('POST', '/rest-api/mixer/add', { uri: 'mixer://m1', remoteStreamName: 'show2' })).status,
    200,
    "m2's stream into m1 (the other worker)",
  );
  const loop = await gateway.request('POST', '/rest-api/mixer/add', { uri: 'mixer://m2', remoteStreamName: 'm1' });
  t.equal(loop.status, 400, "m1's stream into m2 would make a loop across the workers: refused");
  t.match(
    loop.body,
    { error: 'invalid_request', field: 'remoteStreamName', message: /made from this mixer's own output/ },
    'naming the field',
  );
  const listed = (await gateway.request('POST', '/rest-api/mixer/find_all')).body as {
    uri: string;
    inputs: { streamName: string }[];
  }[];
  t.same(
    listed.map((m) => `${m.uri}: ${m.inputs.map((i) => i.streamName).join()}`),
    ['mixer://m1: show2', 'mixer://m2: cam'],
    'find_all lists both, with their inputs',
  );

  t.equal((await gateway.request('POST', '/rest-api/mixer/terminate', { uri: 'mixer://m1' })).status, 200);
  t.equal((await gateway.request('POST', '/rest-api/mixer/terminate', { uri: 'mixer://m2' })).status, 200);
  await waitFor('the mixers gone', async () => (await publishersByWorker()) === '1,0', 10_000);
  t.equal(await publish('m1'), 'taken', "the first mixer's name is free once it ended");
});
