/** The gateway's PCM, between the Opus decoder, the PCM timeline and ffmpeg: 48 kHz, stereo, signed 16-bit little-endian, interleaved. */
export const PCM_SAMPLE_RATE = 48000;
export const PCM_CHANNELS = 2;

/** Float planes (as the Opus decoder gives them) to interleaved 16-bit stereo. */
export function interleave(channels: Float32Array[], frames: number): Int16Array {
  const [left, right = left] = channels as [Float32Array, Float32Array?];
  const out = new Int16Array(frames * PCM_CHANNELS);
  for (let i = 0; i < frames; i++) {
    out[2 * i] = toInt16(left[i]!);
    out[2 * i + 1] = toInt16(right[i]!);
  }
  return out;
}

function toInt16(sample: number): number {
  return clamp(Math.round(sample * 32767));
}

export function clamp(value: number): number {
  return value > 32767 ? 32767 : value < -32768 ? -32768 : value;
}
