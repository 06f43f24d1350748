import { envName } from './load.js';
import { configSchema } from './schema.js';

/** Where docs/configuration.md holds the table `configReference` makes. */
const REFERENCE_START = '<!-- config-reference: made by `npm run config-reference`, do not edit -->';
const REFERENCE_END = '<!-- /config-reference -->';

function shown(value: unknown): string {
  if (value === '') return '""';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Every key of `configSchema` as a Markdown table: key, environment variable, default, meaning. */
export function configReference(): string {
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  const rows = Object.entries(configSchema.shape).map(([key, schema]) => {
    const meaning = schema.description;
    if (!meaning) throw new Error(`configuration key ${key} has no description (.describe() in src/config/sections/)`);
    const cell = (text: string): string => text.replaceAll('|', '\\|');
    return `| \`${key}\` | \`${envName(key)}\` | \`${cell(shown(defaults[key]))}\` | ${cell(meaning)} |`;
  });
  return ['| key | environment variable | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** `readme` with its reference table made anew. */
export function withReference(readme: string): string {
  const start = readme.indexOf(REFERENCE_START);
  const end = readme.indexOf(REFERENCE_END);
  if (start < 0 || end < start)
    throw new Error(`docs/configuration.md has no ${REFERENCE_START} ... ${REFERENCE_END} section`);
  return `${readme.slice(0, start + REFERENCE_START.length)}\n${configReference()}\n${readme.slice(end)}`;
}
