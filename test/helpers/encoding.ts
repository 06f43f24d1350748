import type { EncodingSettings } from '../../src/pipeline/encoding.js';

/** The gateway's encoding defaults, as the pipeline's tests plan with them. */
export const encodingSettings: EncodingSettings = {
  keepAspectRatio: true,
  transcodingEnabled: true,
  videoBitrateKbps: 2500,
  preset: 'veryfast',
  audioBitrateKbps: 128,
  aacCoder: 'fast',
  audioSampleRate: 48000,
  keyframeIntervalS: 2,
};
