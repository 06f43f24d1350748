import t from 'tap';
import { median, percentile, slopeAtLoad } from '../../kit/stats.js';

t.test('percentiles by nearest rank', async (t) => {
  t.equal(median([5, 1, 3]), 3);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), 9);
  t.ok(Number.isNaN(median([])));
});

t.test('the slope over time with the load held constant', async (t) => {
  const hours = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  // 40 MB per stream, and 2 MB an hour of leak; the streams served change (streams moved here).
  const streams = [1, 1, 2, 2, 3, 3, 3, 4, 4, 4];
  const rss = hours.map((h, i) => 100 + 40 * streams[i]! + 2 * h);
  t.ok(Math.abs(slopeAtLoad(hours, streams, rss) - 2) < 1e-6, 'the leak alone, not the streams that moved here');
  const flat = hours.map((_, i) => 100 + 40 * streams[i]!);
  t.ok(Math.abs(slopeAtLoad(hours, streams, flat)) < 1e-6, 'no leak: no slope, however many streams came');
  t.ok(
    Math.abs(
      slopeAtLoad(
        hours,
        hours.map(() => 2),
        hours.map((h) => 50 + 3 * h),
      ) - 3,
    ) < 1e-9,
    'a load that never changed: the plain slope',
  );
  t.equal(slopeAtLoad([0], [1], [5]), 0, 'one sample: no slope');
});
