import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { planeMixerCommands, planePushCommands, type MixerCommands, type PushCommands } from '../control/commands.js';
import { MixerKeeper } from '../control/mixer-keeper.js';
import { PushKeeper } from '../control/push-keeper.js';
import type { KeptPushStore } from '../store/open.js';
import type { Planes } from './planes.js';
import { GatewayError, invalid } from '../core/errors.js';
import { recordingUrl } from '../links/destination.js';
import type { Bucket, BucketError } from '../recordings/bucket.js';

/** The REST API's push and mixer commands: kept across restarts when the gateway has a store for them. */
export interface Keepers {
  pushes: PushCommands;
  mixers: MixerCommands;
  /** Reads what was kept, to start it again as its streams publish: before listening. */
  open(): Promise<void>;
  /** Stops keeping, before the plane closes: what its closing ends is not forgotten. */
  close(): Promise<void>;
}

export function buildKeepers(
  config: GatewayConfig,
  { plane, node }: Planes,
  store: KeptPushStore | undefined,
  log: Logger,
): Keepers {
  // A cluster keeps pushes in its Redis, which every node reads; a gateway on its own, in its data folder.
  const kept = node ? { store: node.store, sealer: node.sealer } : store;
  // In a cluster, a push not live here may be live at the node holding its stream.
  const inCluster =
    node && config.cluster
      ? {
          streamHeld: async (stream: string): Promise<boolean> => (await node.claims.holder(stream)) !== undefined,
          nodesBackMs: config.cluster.node_timeout_ms,
        }
      : {};
  const keeper = kept
    ? new PushKeeper(
        plane,
        kept.store,
        kept.sealer,
        { windowMs: config.push_store_window_ms, ...inCluster },
        log.child({ component: 'kept-pushes' }),
      )
    : undefined;
  if (node && keeper) node.registry.onEmptied = () => void keeper.rewrite();
  // Mixers run within one node: kept in its data folder, on a gateway on its own.
  const mixerKeeper =
    store && !node ? new MixerKeeper(plane, store.mixersFile, log.child({ component: 'kept-mixers' })) : undefined;
  return {
    pushes: keeper ?? planePushCommands(plane),
    mixers: mixerKeeper ?? planeMixerCommands(plane),
    async open() {
      await keeper?.open();
      // After the pushes: the kept pushes of a mixer's stream start again as soon as it publishes.
      await mixerKeeper?.open();
    },
    async close() {
      await keeper?.close();
      await mixerKeeper?.close();
    },
  };
}

/**
 * The keepers, a recording that uploads asked for only while the bucket answers: a bucket that
 * cannot be used is said at the recording's startup (503, naming the setting), not when its first
 * part is finished.
 */
export function withBucketReady(keepers: Keepers, bucket: Bucket | undefined): Keepers {
  const { pushes } = keepers;
  /** Whether a push of `rtmpUrl` is a recording that uploads; a 400 when it asks for a bucket there is none of. */
  const uploads = (rtmpUrl: string): boolean => {
    const recording = recordingUrl(rtmpUrl);
    if (!recording) return false;
    if (!bucket) {
      if (recording.storage === 's3')
        throw invalid('rtmpUrl', 'record://?storage=s3 needs a bucket: the gateway has no record_s3');
      return false;
    }
    return recording.storage === undefined ? bucket.settings.upload_by_default : recording.storage === 's3';
  };
  return {
    ...keepers,
    pushes: {
      terminate: (id) => pushes.terminate(id),
      setMuted: (id, muted) => pushes.setMuted(id, muted),
      soundOn: (id, sound) => pushes.soundOn(id, sound),
      soundOff: (id) => pushes.soundOff(id),
      async startup(request, startedBy) {
        if (uploads(request.rtmpUrl))
          await bucket!.ready().catch((error: BucketError) => {
            throw new GatewayError('unavailable', `${error.field}: ${error.message}`, error.field, 10);
          });
        return pushes.startup(request, startedBy);
      },
    },
  };
}
