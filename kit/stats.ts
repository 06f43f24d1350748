/** The p-th percentile of `xs` (nearest rank); NaN when empty. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const median = (xs: number[]): number => percentile(xs, 50);

/** The arithmetic mean of `xs`; NaN when empty. */
export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const dot = (xs: number[], ys: number[]): number => xs.reduce((sum, x, i) => sum + x * ys[i]!, 0);

/**
 * Least-squares slope of `ys` over time `ts` with the load `ls` held constant: the fit
 * y = a + b·t + c·l, b returned. With a load that never changed it is the plain slope over time.
 */
export function slopeAtLoad(ts: number[], ls: number[], ys: number[]): number {
  if (ts.length < 2) return 0;
  const centre = (xs: number[]): number[] => xs.map((x) => x - mean(xs));
  const [t, l, y] = [centre(ts), centre(ls), centre(ys)];
  const [tt, ll, tl, ty, ly] = [dot(t, t), dot(l, l), dot(t, l), dot(t, y), dot(l, y)];
  const det = tt * ll - tl * tl;
  if (ll === 0 || Math.abs(det) < 1e-9 * tt * ll) return tt === 0 ? 0 : ty / tt;
  return (ty * ll - ly * tl) / det;
}

/** A small deterministic generator (mulberry32) of numbers in [0, 1): the same jitter every run. */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let r = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 2 ** 32;
  };
}
