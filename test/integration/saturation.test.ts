import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { CpuHog, raise } from '../../kit/cpu-hog.js';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { now, waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { pushWhenTaken } from '../helpers/pushes.js';
import { testFixture } from '../helpers/synthetic.js';

// A machine out of CPU: processes spinning on both cores at a higher priority than the gateway
// for 20 s. The publishers and the RTMP server (this process) are given the hog's priority: they
// stand for machines elsewhere. The gateway's pushes degrade (audio discarded to catch up), the
// newest are shed if it lasts, and all are back soon after the load has passed.

const PUSHES = 8;
const HOG_S = 20;

t.test(
  `${PUSHES} pushes through ${HOG_S} s of a CPU hog: at most the newest two end, the others keep their RTMP session, all back within 10 s`,
  async (t) => {
    await raise(0, -20);
    t.teardown(() => raise(0, 0));
    const receiver = await RtmpReceiver.start();
    t.teardown(() => receiver.close());
    const connections = new Map<string, number>();
    receiver.on('publish', (p) => connections.set(p.streamName, (connections.get(p.streamName) ?? 0) + 1));
    // The gateway's log stays in .test-output, to be read when the test failed.
    await mkdir('.test-output', { recursive: true });
    const gateway = await GatewayProcess.start(
      join('.test-output', 'saturation-gateway.log'),
      { GATEWAY_LOG_LEVEL: 'info' },
      ['--import', 'tsx'],
      'kit/server-from-source.ts',
    );
    t.teardown(() => gateway.stop());
    const names = Array.from({ length: PUSHES }, (_, i) => `sat${i}`);
    for (const name of names) {
      const publisher = await SyntheticPublisher.publish(testFixture(), gateway.baseUrl, name);
      t.teardown(() => publisher.stop());
    }
    // Started one after the other: sat7 is the newest.
    for (const name of names)
      t.equal((await pushWhenTaken(gateway, name, `${receiver.url()}/${name}`, 300)).status, 200);
    type Listed = {
      sourceStreamName: string;
      state: string;
      lastError?: string;
      counters: { drops: number; audioDiscardedMs: number };
    };
    const list = async (): Promise<Listed[]> =>
      (await gateway.request('POST', '/rest-api/push/find_all')).body as Listed[];
    await waitFor(
      'every push running',
      async () => (await list()).filter((p) => p.state === 'running').length === PUSHES,
      20_000,
    );
    t.same([...connections.values()], Array(PUSHES).fill(1), 'one RTMP connection each');

    const hog = await CpuHog.start(-20, HOG_S);
    t.teardown(() => hog.stop());
    await hog.ended();
    const calmAt = now();

    let last: Listed[] = [];
    const back = await waitFor(
      'every push running again',
      async () => {
        last = await list();
        return last.length === PUSHES && last.every((p) => p.state === 'running') ? last : undefined;
      },
      10_000,
      200,
    ).catch((error: Error) => {
      const states = last
        .map((p) => `${p.sourceStreamName} ${p.state}${p.lastError ? ` (${p.lastError})` : ''}`)
        .join(', ');
      throw new Error(`${error.message}: ${states}`);
    });
    t.ok(
      now() - calmAt <= 10_000,
      `all ${PUSHES} running ${((now() - calmAt) / 1000).toFixed(1)} s after the hog ended`,
    );
    const ended = back.filter((p) => p.counters.drops > 0);
    t.ok(
      ended.length <= 2,
      `${ended.length} push(es) ended on the way: ${ended.map((p) => `${p.sourceStreamName} (${p.lastError})`).join(', ') || 'none'}`,
    );
    t.same(
      ended.map((p) => p.sourceStreamName).filter((name) => !names.slice(-2).includes(name)),
      [],
      'only the newest were ended',
    );
    for (const p of ended)
      t.match(p.lastError, /saturated/, `${p.sourceStreamName} was ended saying the machine is saturated`);
    const kept = names.filter((name) => !ended.some((p) => p.sourceStreamName === name));
    t.same(
      kept.map((name) => connections.get(name)),
      kept.map(() => 1),
      `the others (${kept.length}) kept their one RTMP connection throughout`,
    );
    const discarded = back.reduce((sum, p) => sum + p.counters.audioDiscardedMs, 0);
    t.comment(`audio discarded to catch up: ${discarded} ms over all pushes`);
  },
);
