import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { STATS_INTERVAL_MS } from '../../src/ingest/mediasoup/session.js';
import { sleep, waitFor } from '../../kit/processes.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { testFixture } from '../helpers/synthetic.js';

// A gateway whose event loops are held (here: the whole process stopped, as a busy machine or a
// long step would hold them) must not lose the RTP that arrives meanwhile: the media worker goes
// on forwarding it, and it waits in the gateway's receive buffers until the loops run again. The
// buffers are sized as the kernel's defaults size them on a fresh machine (the gateway asks for
// 256 KB; Linux doubles it for its bookkeeping), so what one stream's socket must hold is what
// that stream sent while held, not what every stream of the worker sent.

const STREAMS = 4;
const HELD_MS = 400;

interface StreamCounts {
  name: string;
  packetsLost: number;
  framesLost: number;
  hops: { engineSent: number; gatewayReceived: number } | null;
}

t.test('RTP that arrives while the gateway is held is all received once it runs again', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'held-worker-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const gateway = await GatewayProcess.start(
    join(dir, 'gateway.log'),
    { GATEWAY_WORKERS: '1', GATEWAY_WEBRTC_UDP_RECEIVE_BUFFER_BYTES: String(256 * 1024) },
    ['--import', 'tsx'],
    'kit/server-from-source.ts',
  );
  t.teardown(() => gateway.stop());
  const publishers: SyntheticPublisher[] = [];
  t.teardown(async () => {
    for (const publisher of publishers) await publisher.stop();
  });
  const names = Array.from({ length: STREAMS }, (_, i) => `held${i}`);
  for (const name of names) publishers.push(await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, name));
  const streams = async (): Promise<StreamCounts[]> =>
    ((await gateway.request('POST', '/rest-api/stream/find_all')).body ?? []) as StreamCounts[];
  await waitFor(
    'every stream receiving video',
    async () => (await streams()).filter((s) => (s.hops?.gatewayReceived ?? 0) > 200).length === STREAMS,
    20_000,
  );
  const before = await streams();

  process.kill(gateway.pid, 'SIGSTOP');
  try {
    await sleep(HELD_MS); // the hold itself is what is tested: a stretch of time in which the gateway runs nothing
  } finally {
    process.kill(gateway.pid, 'SIGCONT');
  }
  // The engine's counts are read every STATS_INTERVAL_MS: wait until they are past the hold, and the gateway has caught up.
  const heldAt = Date.now();
  const after = await waitFor(
    'the engine counts read after the hold',
    async () => {
      const now = await streams();
      return Date.now() - heldAt > STATS_INTERVAL_MS + 500 && now.every((s) => s.hops) ? now : undefined;
    },
    30_000,
  );

  for (const name of names) {
    const was = before.find((s) => s.name === name)!;
    const is = after.find((s) => s.name === name)!;
    t.ok(is.hops!.gatewayReceived - was.hops!.gatewayReceived > 0, `${name}: RTP went on arriving`);
    t.equal(
      is.packetsLost,
      was.packetsLost,
      `${name}: no RTP packet lost while held (${is.packetsLost - was.packetsLost} lost)`,
    );
    t.equal(is.framesLost, was.framesLost, `${name}: no frame lost`);
  }
});
