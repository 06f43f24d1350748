import { yuvOf } from '../../src/mixers/canvas.js';
import type { MixerSpec } from '../../src/mixers/mixer.js';

/** A mixer's spec for tests that make a `Mixer` themselves: a black grid of `width`x`height`. */
export function mixerSpec(width: number, height: number, frameRate = 30): MixerSpec {
  return {
    name: 'mix',
    hasVideo: true,
    layout: { kind: 'grid' },
    size: { width, height },
    frameRate,
    background: '#000000',
    backgroundPicture: yuvOf('#000000'),
    overlays: [],
    videoBitrateKbps: 300,
    audioBitrateKbps: 64,
  };
}
