/**
 * How audible a coder's noise is: the noise-to-mask ratio (NMR) after Brandenburg (1987), with
 * Johnston's (1988) masking threshold. Per frame of 2048 samples (Hann, half overlap) and per
 * critical band (one Bark wide, up to 20 kHz):
 *
 * - the noise is the power of the difference of the two spectra (decoded minus source);
 * - the mask is the source's band power spread over its neighbours (Schroeder's spreading
 *   function), lowered by an offset between 5.5 dB (noise-like) and 14.5 + band dB (tonal) after
 *   the frame's spectral flatness, and never below the threshold in quiet (Terhardt's, with full
 *   scale taken as 96 dB SPL).
 *
 * Total NMR is the mean of noise/mask over bands and frames, in dB: below 0 dB, the noise sits
 * under the mask on average. A disturbed frame has a band with noise above its mask. It is an
 * estimate, not PEAQ: no outer-ear or time-domain masking, and no listener.
 */
export interface Nmr {
  totalDb: number;
  disturbedFrames: number;
  /** Plain signal-to-noise ratio of the waveforms, in dB (what a perceptual coder does not aim for). */
  snrDb: number;
  /** The upper edge (kHz) of the highest band whose decoded power is within 10 dB of the source's. */
  bandwidthKhz: number;
}

const N = 2048;
const HOP = N / 2;
const BANDS = 25;
/** A full-scale sine's power in one side of the Hann-windowed spectrum (Parseval). */
const FULL_SCALE = (3 * N * N) / 32;

/** Source and decoded, interleaved stereo at `rate`, already aligned. */
export function noiseToMask(source: Float32Array, decoded: Float32Array, rate: number, channels = 2): Nmr {
  const window = Float64Array.from({ length: N }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N));
  const band = bandOfBins(rate);
  const quiet = quietThreshold(rate, band);
  const spread = spreading();
  const frames = Math.floor((Math.min(source.length, decoded.length) / channels - N) / HOP);
  let ratioSum = 0;
  let ratioCount = 0;
  let disturbed = 0;
  let signal = 0;
  let noise = 0;
  const bandSource = new Float64Array(BANDS);
  const bandDecoded = new Float64Array(BANDS);
  const sr = new Float64Array(N);
  const si = new Float64Array(N);
  const dr = new Float64Array(N);
  const di = new Float64Array(N);
  for (let f = 0; f < frames; f++) {
    let frameDisturbed = false;
    for (let c = 0; c < channels; c++) {
      for (let i = 0; i < N; i++) {
        const at = (f * HOP + i) * channels + c;
        sr[i] = source[at]! * window[i]!;
        dr[i] = decoded[at]! * window[i]!;
        si[i] = 0;
        di[i] = 0;
        if (i < HOP) {
          signal += source[at]! ** 2;
          noise += (decoded[at]! - source[at]!) ** 2;
        }
      }
      fft(sr, si);
      fft(dr, di);
      const power = new Float64Array(BANDS);
      const error = new Float64Array(BANDS);
      let logSum = 0;
      let linSum = 0;
      const bins = N / 2;
      for (let k = 1; k < bins; k++) {
        const p = sr[k]! ** 2 + si[k]! ** 2;
        const b = band[k]!;
        if (b < 0) continue;
        power[b]! += p;
        bandSource[b]! += p;
        bandDecoded[b]! += dr[k]! ** 2 + di[k]! ** 2;
        error[b]! += (dr[k]! - sr[k]!) ** 2 + (di[k]! - si[k]!) ** 2;
        logSum += Math.log(p + 1e-12);
        linSum += p;
      }
      const flatnessDb = (10 / Math.LN10) * (logSum / (bins - 1) - Math.log(linSum / (bins - 1) + 1e-12));
      const tonality = Math.min(flatnessDb / -60, 1);
      for (let b = 0; b < BANDS; b++) {
        let spreadPower = 0;
        for (let j = 0; j < BANDS; j++) spreadPower += power[j]! * spread[b - j + BANDS - 1]!;
        const offsetDb = tonality * (14.5 + b + 1) + (1 - tonality) * 5.5;
        const mask = Math.max(spreadPower * 10 ** (-offsetDb / 10), quiet[b]!);
        const ratio = error[b]! / mask;
        ratioSum += ratio;
        ratioCount++;
        if (ratio > 1) frameDisturbed = true;
      }
    }
    if (frameDisturbed) disturbed++;
  }
  return {
    totalDb: 10 * Math.log10(ratioSum / Math.max(ratioCount, 1)),
    disturbedFrames: disturbed / Math.max(frames, 1),
    snrDb: 10 * Math.log10(signal / Math.max(noise, 1e-20)),
    bandwidthKhz: bandwidth(bandSource, bandDecoded, band, rate),
  };
}

function bandwidth(source: Float64Array, decoded: Float64Array, band: Int8Array, rate: number): number {
  let top = -1;
  for (let b = 0; b < BANDS; b++) if (source[b]! > 0 && decoded[b]! >= source[b]! / 10) top = b;
  const last = band.lastIndexOf(top);
  return top < 0 ? 0 : ((last + 1) * rate) / N / 1000;
}

/** The critical band (Bark, Zwicker's formula) of each bin; -1 above 20 kHz. */
function bandOfBins(rate: number): Int8Array {
  const band = new Int8Array(N / 2);
  for (let k = 0; k < N / 2; k++) {
    const hz = (k * rate) / N;
    band[k] = hz > 20000 ? -1 : Math.min(BANDS - 1, Math.floor(bark(hz)));
  }
  return band;
}

function bark(hz: number): number {
  return 13 * Math.atan(0.00076 * hz) + 3.5 * Math.atan((hz / 7500) ** 2);
}

/** Per band, the threshold in quiet at its quietest bin, as power in the spectrum's scale. */
function quietThreshold(rate: number, band: Int8Array): Float64Array {
  const quiet = new Float64Array(BANDS).fill(Infinity);
  for (let k = 1; k < N / 2; k++) {
    const b = band[k]!;
    if (b < 0) continue;
    const khz = Math.max((k * rate) / N, 20) / 1000;
    const splDb = 3.64 * khz ** -0.8 - 6.5 * Math.exp(-0.6 * (khz - 3.3) ** 2) + 1e-3 * khz ** 4;
    quiet[b] = Math.min(quiet[b]!, FULL_SCALE * 10 ** ((splDb - 96) / 10));
  }
  return quiet;
}

/** Schroeder's spreading function, by band distance (maskee minus masker) from -(BANDS-1) to BANDS-1. */
function spreading(): Float64Array {
  return Float64Array.from({ length: 2 * BANDS - 1 }, (_, i) => {
    const dz = i - (BANDS - 1) + 0.474;
    return 10 ** ((15.81 + 7.5 * dz - 17.5 * Math.sqrt(1 + dz * dz)) / 10);
  });
}

/** In-place radix-2 FFT of a power-of-two length. */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const angle = (-2 * Math.PI) / size;
    const wr = Math.cos(angle);
    const wi = Math.sin(angle);
    for (let start = 0; start < n; start += size) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < size / 2; k++) {
        const a = start + k;
        const b = a + size / 2;
        const tr = re[b]! * cr - im[b]! * ci;
        const ti = re[b]! * ci + im[b]! * cr;
        re[b] = re[a]! - tr;
        im[b] = im[a]! - ti;
        re[a]! += tr;
        im[a]! += ti;
        const next = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = next;
      }
    }
  }
}
