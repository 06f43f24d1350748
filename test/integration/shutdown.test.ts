import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { sleep, stopAllProcesses, waitFor, isAlive } from '../../kit/processes.js';
import { ORPHAN_GRACE_MS } from '../../src/ffmpeg/spawner-wire.js';
import { freePort, NginxRtmp } from '../../kit/rtmp-server.js';
import { testFixture } from '../helpers/synthetic.js';

// The gateway as its own process (src/server.ts), as an operator runs it, stopped by signals.

const runDir = await mkdtemp(join(tmpdir(), 'gateway-run-'));
const env = { GATEWAY_HTTP_PORT: String(await freePort()), GATEWAY_RUN_DIR: runDir };
const nginx = await NginxRtmp.start();
const leftovers = new Set<number>();
t.teardown(async () => {
  for (const pid of leftovers) kill(pid);
  await stopAllProcesses();
  await nginx.stop();
  await rm(runDir, { recursive: true, force: true });
});

const startGateway = (): Promise<GatewayProcess> =>
  GatewayProcess.start(join(runDir, 'gateway.log'), env, ['--import', 'tsx'], 'kit/server-from-source.ts');

/** A gateway with one publisher pushed twice: passed through and transcoded (ffmpeg reading RTP). */
async function busyGateway(t: Test): Promise<{ gateway: GatewayProcess; pids: number[] }> {
  const gateway = await startGateway();
  const publisher = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, 'busy');
  t.teardown(() => publisher.stop());
  for (const body of [{}, { height: 360, rtmpUrl: `${nginx.url()}/busy-small`, rtmpTransponderFullUrl: true }]) {
    const res = await gateway.request('POST', '/rest-api/push/startup', {
      streamName: 'busy',
      rtmpUrl: nginx.url(),
      ...body,
    });
    t.equal(res.status, 200, JSON.stringify(res.body));
  }
  const pids = await gateway.ffmpegPids();
  pids.forEach((pid) => leftovers.add(pid));
  t.equal(pids.length, 2, 'two ffmpeg processes run');
  return { gateway, pids };
}

t.test('SIGTERM ends every push cleanly within 10 s and leaves no ffmpeg', async (t) => {
  const { gateway, pids } = await busyGateway(t);
  const started = Date.now();
  const code = await gateway.signal('SIGTERM');
  const tookMs = Date.now() - started;
  t.equal(code, 0, 'the gateway exits with status 0');
  t.ok(tookMs < 10_000, `within 10 s (${tookMs} ms)`);
  t.same(pids.filter(isAlive), [], 'no ffmpeg is left');
  t.same(
    (await nginx.streams()).map((s) => s.name),
    [],
    'both RTMP streams were unpublished',
  );
});

t.test('after kill -9, its spawner ends every ffmpeg after its grace, even one that hangs', async (t) => {
  const { gateway, pids } = await busyGateway(t);
  // An ffmpeg reading a closed pipe ends by itself; one that hangs (stopped here, so that it cannot
  // see its input end) would run on, but for the spawner, which kills those left when the gateway has
  // gone, once they have had their grace.
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  await gateway.signal('SIGKILL');
  await waitFor('every ffmpeg to be ended', () => pids.every((pid) => !isAlive(pid)), ORPHAN_GRACE_MS + 5000);
  t.pass('none outlived the gateway');
});

t.test(
  'after kill -9 of the gateway and its spawner, the next start ends the ffmpeg processes they left',
  async (t) => {
    const { gateway, pids } = await busyGateway(t);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    const spawners = await gateway.spawnerPids();
    t.equal(spawners.length, 1, 'one spawner');
    if (spawners.length !== 1) return;
    // The gateway stopped first, so that it cannot hear of its spawner's end (it would end the ffmpeg
    // itself); killed whatever happens next, never left stopped.
    t.teardown(() => kill(gateway.pid));
    process.kill(gateway.pid, 'SIGSTOP');
    process.kill(spawners[0]!, 'SIGKILL');
    await gateway.signal('SIGKILL');
    await sleep(1000);
    const orphans = pids.filter(isAlive);
    t.equal(
      orphans.length,
      pids.length,
      `the ffmpeg processes outlived the killed gateway (${orphans.length} of ${pids.length})`,
    );
    const next = await startGateway();
    t.teardown(() => next.stop());
    await waitFor('the orphans to be ended', () => orphans.every((pid) => !isAlive(pid)), 3000);
    t.pass('the next start ended them');
    t.equal((await next.request('GET', '/health')).status, 200, 'and serves');
  },
);

function kill(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Gone.
  }
}
