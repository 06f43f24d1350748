import { parentPort, workerData } from 'node:worker_threads';
import type { GatewayConfig } from '../config/schema.js';
import type { SpawnerAddress } from '../ffmpeg/spawner-wire.js';
import { GatewayError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { trackedSizes } from '../core/tracked.js';
import { buildMediaCore } from './core.js';
import { LocalPlane } from './local.js';
import type { PlaneStatus } from './plane.js';
import { answerTypedCall, routedTo, type HolderCalls } from './methods.js';
import { toWire, type Call, type WorkerMessage } from './wire.js';
import { mixerStream } from '../mixers/requests.js';

/** What the main thread gives each worker. */
export interface WorkerData {
  config: GatewayConfig;
  index: number;
  /** The gateway-wide counts behind the limits (`Slots`). */
  slots: SharedArrayBuffer;
  /** The gateway's spawner (`spawner.ts`). */
  spawner?: SpawnerAddress;
}

/** How often the worker tells its load, and counts, to the main thread. */
const STATUS_INTERVAL_MS = 1000;

/**
 * One worker thread: runs the streams placed on it (publishers, pushes, their ffmpeg) in a
 * `LocalPlane` of its own, answers the main thread's calls and tells it what happens, in order.
 */
function main(port: NonNullable<typeof parentPort>, data: WorkerData): void {
  const { config, index } = data;
  const log = createLogger(config.log_level, undefined, config.log_format === 'pretty' ? 'pretty' : 'json').child({
    worker: index,
  });
  const post = (message: WorkerMessage): void => port.postMessage(message);
  const core = buildMediaCore(config, log, {
    slots: data.slots,
    spawner: data.spawner,
    childRecord: {
      add: (pid) => post({ kind: 'child', op: 'add', pid }),
      remove: (pid) => post({ kind: 'child', op: 'remove', pid }),
    },
  });
  const plane = new LocalPlane(core, String(index));
  const { publishers, pushes } = core;

  const sendStatus = (): void => {
    const counts: PlaneStatus['pushes'] = plane.status().pushes;
    post({ kind: 'status', load: { ...plane.load, tracked: trackedSizes() }, pushes: counts });
  };
  const idleCheck = (stream: string): void => {
    if (!publishers.get(stream) && pushes.find({ streamName: stream }).length === 0) post({ kind: 'idle', stream });
  };
  plane.watch((change) => {
    post({ kind: 'push', change });
    sendStatus();
  });
  plane.events((event) => post({ kind: 'event', event }));
  pushes.on('removed', (t) => {
    post({ kind: 'removed', mediaSessionId: t.mediaSessionId });
    sendStatus();
    idleCheck(t.publisher.name);
  });
  publishers.on('closed', (publisher) => {
    sendStatus();
    idleCheck(publisher.name);
  });
  const timer = setInterval(sendStatus, STATUS_INTERVAL_MS);

  const methods: HolderCalls = {
    publish: async (name, offer, clientAddress) => {
      let publisherId = ''; // known before either event can come: both follow the ICE exchange
      const published = await plane.publish(
        name,
        offer,
        {
          publishing: () => post({ kind: 'publishing', publisherId }),
          closed: (reason, lost) => post({ kind: 'closed', publisherId, reason, lost }),
        },
        clientAddress,
      );
      publisherId = published.id;
      return published;
    },
    ...routedTo(plane),
    relayStream: (stream, relay) => plane.relayStream(stream, relay),
    close: async () => {
      clearInterval(timer);
      await plane.close();
    },
  };

  port.on('message', (call: Call) => {
    void (async () => {
      let reply: WorkerMessage;
      try {
        const value = await answerTypedCall(methods, call.method, call.args);
        reply = { kind: 'reply', id: call.id, value };
      } catch (error) {
        if (!(error instanceof GatewayError)) log.error({ err: error, method: call.method }, 'worker call failed');
        reply = { kind: 'reply', id: call.id, error: toWire(error) };
      }
      post(reply);
      sendStatus();
      // A publish or a mixer's start that failed leaves its stream held by no one here.
      const stream =
        call.method === 'publish' || call.method === 'unpublish'
          ? call.args[0]
          : call.method === 'mixerStartup' && typeof call.args[0]?.uri === 'string'
            ? mixerStream(call.args[0])
            : undefined;
      if (stream !== undefined) idleCheck(stream);
    })();
  });
  process.on('exit', () => plane.killChildren());
}

if (parentPort) main(parentPort, workerData as WorkerData);
