// Long fuzzing runs: `npm run fuzz -- --cases 100000 [--seed N] [--only rest|whip|whep|ws]`. The same
// properties as the suite's 10,000-case test (test/integration/fuzz.test.ts), with more cases.
import { parseArgs } from 'node:util';
import { FUZZ_PARTS, runFuzz, type FuzzPart } from '../test/helpers/fuzz.js';

const { values } = parseArgs({
  options: { cases: { type: 'string', default: '100000' }, seed: { type: 'string' }, only: { type: 'string' } },
});
const cases = Number(values.cases);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const only = values.only as FuzzPart | undefined;
if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed) || (only && !FUZZ_PARTS.includes(only))) {
  console.error('usage: npm run fuzz -- [--cases N] [--seed N] [--only rest|whip|whep|ws]');
  process.exit(2);
}
const started = Date.now();
console.log(`fuzzing ${cases} cases, seed ${seed}${only ? `, ${only} only` : ''}`);
const report = await runFuzz({
  cases,
  seed,
  only,
  onProgress: (line) => console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s  ${line}`),
});
console.log(JSON.stringify({ ...report, seconds: Math.round((Date.now() - started) / 1000) }, null, 2));
const failed =
  report.serverErrors.length > 0 || report.wsInternalErrors.length > 0 || !report.alive || report.ffmpegLeft > 0;
console.log(
  failed
    ? 'FAILED: see serverErrors / wsInternalErrors above (re-run with the same --seed)'
    : 'no 5xx, no internal error, gateway alive, no ffmpeg left',
);
process.exit(failed ? 1 : 0);
