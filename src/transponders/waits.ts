import type { Publisher } from '../publishers/publisher.js';

/** What `withinTimeout` throws when the time ran out, apart from the promise's own failure. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** `promise`, or an error saying `what` within `timeoutMs` once that long has passed. */
export async function withinTimeout<T>(promise: Promise<T> | undefined, timeoutMs: number, what: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

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
