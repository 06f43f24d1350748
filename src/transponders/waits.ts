import type { Publisher } from '../publishers/publisher.js';

/** Waits until the publisher caches a keyframe to start from (it asks the sender for one). */
export async function cachedKeyframe(publisher: Publisher, timeoutMs: number): Promise<void> {
  if (publisher.hasKeyframe) return;
  await new Promise<void>((resolve, reject) => {
    const timeout = setTimeout(() => finish(new Error('no keyframe arrived from the publisher')), timeoutMs);
    const onKeyframe = (): void => {
      if (publisher.hasKeyframe) finish();
    };
    publisher.on('keyframe', onKeyframe);
    function finish(error?: Error): void {
      clearTimeout(timeout);
      publisher.off('keyframe', onKeyframe);
      if (error) reject(error);
      else resolve();
    }
  });
}
