import { z } from 'zod';
import { accessFields } from './sections/access.js';
import { audioFields } from './sections/audio.js';
import { clusterFields } from './sections/cluster.js';
import { destinationFields } from './sections/destinations.js';
import { checkHttps, httpFields } from './sections/http.js';
import { checkViewersPerClient, limitFields } from './sections/limits.js';
import { loggingFields } from './sections/logging.js';
import { overloadFields } from './sections/overload.js';
import { checkAutoStart, checkSendBuffer, pushFields } from './sections/pushes.js';
import { recordingFields } from './sections/recordings.js';
import { checkPushStoreSecret, stateFields } from './sections/state.js';
import { storageFields } from './sections/storage.js';
import { checkThumbnailUpload, thumbnailFields } from './sections/thumbnails.js';
import { transcodingFields } from './sections/transcoding.js';
import { webhookFields } from './sections/webhooks.js';
import { checkIcePorts, checkVideoBitrates, webRtcFields } from './sections/webrtc.js';

/**
 * Every configuration key, with its default and its description (`.describe()`), from which the
 * configuration table of docs/configuration.md is made (`npm run config-reference`; a test fails when
 * it is out of date). `config/gateway.yml` documents each one too; keep the two in step. Names follow
 * Web Call Server's properties where it has one. Each part lives in `sections/`, with the checks across
 * its keys; the parts follow one another here in the order of the table.
 */
export const configSchema = z
  .strictObject({
    ...httpFields,
    ...accessFields,
    ...webhookFields,
    ...limitFields,
    ...overloadFields,
    ...destinationFields,
    ...loggingFields,
    ...webRtcFields,
    ...pushFields,
    ...transcodingFields,
    ...audioFields,
    ...recordingFields,
    ...storageFields,
    ...thumbnailFields,
    ...clusterFields,
    ...stateFields,
  })
  .superRefine((c, ctx) => {
    // Each section's checks across its keys; when several fail, their messages come in this order.
    for (const check of [
      checkIcePorts,
      checkAutoStart,
      checkViewersPerClient,
      checkSendBuffer,
      checkHttps,
      checkPushStoreSecret,
      checkVideoBitrates,
      checkThumbnailUpload,
    ])
      check(c, ctx);
  });

export type GatewayConfig = z.infer<typeof configSchema>;
