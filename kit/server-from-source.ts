import { start } from '../src/server.js';
import { sourceWorkers } from './source-workers.js';

// The gateway's process as `src/server.ts` makes it, run from the TypeScript sources (`node --import
// tsx kit/server-from-source.ts`): its worker threads run the sources too.
start({ startWorker: sourceWorkers });
