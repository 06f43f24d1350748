import type { GatewayConfig } from '../config/schema.js';
import { spawnerConnection } from '../ffmpeg/spawner-client.js';
import { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import { WorkQueue } from '../http/work-queue.js';
import { checkDestination, type CheckReport, type CheckRequest } from '../links/check.js';
import type { MediaCoreDependencies } from '../plane/core.js';
import { checkSettings } from '../control/destination-checks.js';

/** A destination check for a caller: queued, at most `limit_checks` at once. */
export type Check = (request: CheckRequest, caller: string) => Promise<CheckReport>;

/**
 * Destination checks run in this thread, their ffmpeg (SRT) ended with the gateway. A check may start
 * an ffmpeg: bounded in all and per client, the rest refused at once.
 */
export function destinationCheckQueue(
  config: GatewayConfig,
  deps: Pick<MediaCoreDependencies, 'childRecord' | 'spawner' | 'lookupHost'>,
): { check: Check; close(): void } {
  const ffmpeg = new FfmpegSupervisor(deps.childRecord, spawnerConnection(deps.spawner));
  const settings = checkSettings(config, ffmpeg, deps.lookupHost);
  const queue = new WorkQueue({
    running: config.limit_checks,
    queue: config.limit_checks_queue,
    perCaller: config.limit_checks_per_client,
    what: 'destination checks',
    keys: { running: 'limit_checks', queue: 'limit_checks_queue', perCaller: 'limit_checks_per_client' },
  });
  return {
    check: (request, caller) => queue.run(caller, () => checkDestination(request, settings)),
    close: () => ffmpeg.killAll(),
  };
}
