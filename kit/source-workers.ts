import { Worker } from 'node:worker_threads';
import type { WorkerStarter } from '../src/plane/workers.js';

/**
 * The gateway's worker threads run from the TypeScript sources, as the tests run the gateway:
 * `worker.ts` with tsx registered in the thread first (Node 20 runs no `--import` in a worker).
 */
export const sourceWorkers: WorkerStarter = (data, name) => {
  const entry = new URL('../src/plane/worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: data, name });
};
