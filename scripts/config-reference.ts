/**
 * Makes the configuration table of docs/configuration.md from `configSchema` (keys, environment
 * variables, defaults, the descriptions given with `.describe()`). `--check` only says whether it is
 * current.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from '../src/config/reference.js';

const PAGE = new URL('../docs/configuration.md', import.meta.url);
const current = readFileSync(PAGE, 'utf8');
const made = withReference(current);
if (process.argv.includes('--check')) {
  if (made !== current) {
    console.error('docs/configuration.md: the configuration table is out of date; run npm run config-reference');
    process.exit(1);
  }
} else if (made !== current) {
  writeFileSync(PAGE, made);
  console.log('docs/configuration.md: configuration table made anew');
}
