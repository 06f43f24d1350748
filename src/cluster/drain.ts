import type { Logger } from 'pino';
import { monotonicMs } from '../core/clock.js';
import { pollUntil } from '../core/events.js';
import type { MediaPlane } from '../plane/plane.js';
import { isActive } from '../pushes/states.js';
import type { HeldStreams } from './held-streams.js';
import type { ClusterNode } from './node.js';

/** A node to drain: its own plane, its node in the cluster, the streams it holds. */
interface Draining {
  inner: MediaPlane;
  node: ClusterNode;
  held: HeldStreams;
  log: Logger;
}

/**
 * Drains this node (a rolling deploy): it takes no new work; each stream published here is
 * moved, one at a time: its pushes end here (kept pushes stay kept), its publisher is told to
 * publish again (the SDK does so at once, and is placed at another node, where its pushes start
 * again), and the stream is given up. Resolves once nothing is left here, or at `deadline`.
 */
export async function drain(
  { inner, node, held, log }: Draining,
  deadline: number,
): Promise<{ moved: number; left: number }> {
  await node.startDraining();
  log.info({ node: node.id }, 'draining: moving every stream to other nodes');
  let moved = 0;
  for (const stream of await inner.streams()) {
    if (monotonicMs() >= deadline) break;
    await held.move(stream.name, 'this node is draining: publish again at another node');
    const elsewhere = await pollUntil(
      async () => {
        const claim = await node.claims.holder(stream.name).catch(() => undefined);
        return claim !== undefined && claim.node !== node.id;
      },
      Math.min(deadline, monotonicMs() + 10_000),
    );
    if (elsewhere) moved++;
    log.info(
      { stream: stream.name, elsewhere },
      elsewhere ? 'stream moved' : 'stream not published elsewhere in 10 s: going on',
    );
  }
  // Pushes left waiting for a publisher that went away end here too: they start again where it comes back.
  for (const push of await inner.find({})) {
    if (isActive(push.state)) await held.move(push.sourceStreamName, 'this node is draining');
  }
  await pollUntil(
    async () => (await inner.streams()).length === 0 && !(await inner.find({})).some((p) => isActive(p.state)),
    deadline,
  );
  const left = (await inner.streams()).length;
  log.info({ moved, left }, 'drained');
  return { moved, left };
}
