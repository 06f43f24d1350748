import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { WorkerStarter } from '../src/plane/thread.js';

/**
 * A worker thread running the TypeScript module `entry` (a file: URL), with tsx registered in the
 * thread first (Node 20 runs no `--import` in a worker).
 */
export function typeScriptWorker(entry: URL, options: Omit<WorkerOptions, 'eval'>): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsx)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/** The gateway's worker threads run from the TypeScript sources, as the tests run the gateway. */
export const sourceWorkers: WorkerStarter = (data, name) =>
  typeScriptWorker(new URL('../src/plane/worker.ts', import.meta.url), { workerData: data, name });
