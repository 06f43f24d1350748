import t from 'tap';
import { GatewayError } from '../../src/core/errors.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { waitFor } from '../../kit/processes.js';
import { startGateway } from '../helpers/gateway.js';
import { testFixture } from '../helpers/synthetic.js';

// Every call the plane routes, made on a gateway whose streams run in two worker threads: each
// reaches the worker that holds its stream or push, lists are gathered from both oldest first,
// and errors come back with their codes. (Arguments are parsed where they enter the gateway, not
// again in the worker: `answerTypedCall`, in the plane-methods unit test.)

const gw = await startGateway({ workers: 2 });
const receiver = await RtmpReceiver.start();
const publishers: SyntheticPublisher[] = [];
t.teardown(async () => {
  for (const publisher of publishers) await publisher.stop();
  await gw.close();
  await receiver.close();
});

/** Each worker's publishers, from /metrics. */
async function publishersByWorker(): Promise<string> {
  const text = await (await fetch(`${gw.baseUrl}/metrics`)).text();
  return [...text.matchAll(/^gateway_load\{worker="(\d+)",measure="publishers"\} (\d+)$/gm)]
    .map((m) => `${m[1]}:${m[2]}`)
    .join(' ');
}

const codeOf = (error: unknown): string | undefined => (error instanceof GatewayError ? error.code : undefined);

t.test('each routed call reaches the worker that holds its stream or push', async (t) => {
  for (const name of ['r0', 'r1']) publishers.push(await SyntheticPublisher.publish(testFixture(), gw.baseUrl, name));
  await waitFor('a publisher in each worker', async () => (await publishersByWorker()) === '0:1 1:1', 10_000);

  const streams = await gw.plane.streams();
  t.same(
    streams.map((s) => s.name),
    ['r0', 'r1'],
    'streams: both workers gathered, oldest first',
  );
  t.same(
    (await gw.plane.streams('r1')).map((s) => s.name),
    ['r1'],
    'streams by name: the worker holding it',
  );
  await waitFor('keyframes of both', async () => (await gw.plane.streams()).every((s) => s.keyframes > 0), 15_000);

  const first = await gw.plane.startup({ streamName: 'r0', rtmpUrl: receiver.url() + '/r0' });
  const second = await gw.plane.startup({ streamName: 'r1', rtmpUrl: receiver.url() + '/r1' });
  t.same(
    (await gw.plane.find({})).map((p) => p.mediaSessionId),
    [first.mediaSessionId, second.mediaSessionId],
    'find: both workers gathered, oldest first',
  );
  t.same(
    (await gw.plane.find({ streamName: 'r1' })).map((p) => p.mediaSessionId),
    [second.mediaSessionId],
    'find by stream',
  );

  await gw.plane.setMuted(second.mediaSessionId, true);
  t.same(
    (await gw.plane.find({})).map((p) => p.muted),
    [false, true],
    'setMuted reached the push of the other worker, and only it',
  );
  await t.rejects(
    gw.plane.soundOn(first.mediaSessionId, { soundFile: 'missing.wav' }),
    { code: 'not_found' },
    'soundOn: the worker answered, its error code crossed',
  );
  await gw.plane.soundOff(first.mediaSessionId);

  const jpeg = await gw.plane.snapshot('r1');
  t.ok(Buffer.isBuffer(jpeg) && jpeg[0] === 0xff && jpeg[1] === 0xd8, 'snapshot: a JPEG from the worker holding r1');
  t.equal(await gw.plane.endView('r0', 'no-such-viewer'), false, 'endView: the holder has no such viewer');

  await gw.plane.terminate(second.mediaSessionId);
  await waitFor('the push to end', async () => (await gw.plane.find({})).length === 1, 10_000);
  t.equal(await gw.plane.unpublish('r1', undefined, 'test over'), true, 'unpublish: the worker holding r1 ended it');
  t.same(
    (await gw.plane.streams()).map((s) => s.name),
    ['r0'],
    'only r0 publishes',
  );
});

t.test('a key held nowhere gets the answer of nothing', async (t) => {
  t.same(await gw.plane.streams('nowhere'), []);
  t.same(await gw.plane.find({ streamName: 'nowhere' }), []);
  await t.rejects(gw.plane.terminate('no-such-push'), { code: 'not_found' });
  await t.rejects(gw.plane.snapshot('nowhere'), { code: 'not_found' });
  const refused: unknown = await gw.plane.view('nowhere', 'v=0\r\n', '127.0.0.1').then(
    () => undefined,
    (error: unknown) => error,
  );
  t.ok(codeOf(refused), `view: a coded answer (${codeOf(refused)})`);
});
