import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { resolve } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import { ROOT } from '../core/paths.js';
import type { LifecycleEvent } from '../plane/lifecycle.js';
import { Bucket } from './bucket.js';
import type { RecordHook } from './record-hook.js';
import type { RecordingStore } from './library.js';
import { RecordingUploads, uploadMetrics } from './uploads.js';

/**
 * The bucket this node's recordings are uploaded to (`record_s3`), and its uploads, counted in
 * `registry` and told as events; undefined when recordings stay on disk.
 */
export function recordingStore(
  config: GatewayConfig,
  registry: Registry,
  tell: (event: LifecycleEvent) => void,
  log: Logger,
  hook?: RecordHook,
): RecordingStore | undefined {
  const bucket = Bucket.fromConfig(config);
  if (!bucket) return undefined;
  const queued = { count: (): number => 0 };
  const uploads = new RecordingUploads(
    bucket,
    resolve(ROOT, config.record_dir),
    parseInt(config.record_file_mode, 8),
    uploadMetrics(registry, () => queued.count()),
    tell,
    log.child({ component: 'uploads' }),
    async (part, path, key) => hook?.run({ path, stream: part.stream, mediaSessionId: part.mediaSessionId }, key),
  );
  queued.count = () => uploads.queued;
  return { bucket, uploads };
}
