import { z } from 'zod';

/**
 * The log of the main thread (`server.ts`) and of each worker (`plane/worker.ts`).
 */
export const loggingFields = {
  log_level: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe("`debug` adds ffmpeg's output (ffmpeg never sees the destination)"),
  log_format: z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe(
      '`auto`: one readable line per event when stdout is a terminal, JSON lines otherwise; or `json`, `pretty`. ' +
        'Every line about a push carries its `stream`, `mediaSessionId` and `destination` (redacted)',
    ),
};
