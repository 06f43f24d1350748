/**
 * Makes the README's configuration table from `configSchema` (keys, environment variables,
 * defaults, the descriptions given with `.describe()`). `--check` only says whether it is current.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from '../src/config/reference.js';

const README = new URL('../README.md', import.meta.url);
const current = readFileSync(README, 'utf8');
const made = withReference(current);
if (process.argv.includes('--check')) {
  if (made !== current) {
    console.error('README.md: the configuration table is out of date; run npm run config-reference');
    process.exit(1);
  }
} else if (made !== current) {
  writeFileSync(README, made);
  console.log('README.md: configuration table made anew');
}
