import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type GatewayConfig } from './schema.js';

const ENV_PREFIX = 'GATEWAY_';

/** The environment variable that sets `key`. */
export function envName(key: string): string {
  return ENV_PREFIX + key.toUpperCase();
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Formats zod issues as `key.path: message` lines, one per issue. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${[...issue.path, k].join('.')}: unknown key`).join('; ');
      }
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Reads `GATEWAY_<KEY>` variables for the schema's keys. A value that parses as JSON is taken as
 * JSON (numbers, booleans, arrays); otherwise a comma-separated value becomes an array for array
 * keys, and anything else stays a string.
 */
export function envOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const raw = env[envName(key)];
    if (raw === undefined) continue;
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      if (isArrayKey(key))
        value = raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
    }
    if (isArrayKey(key) && typeof value === 'string') value = [value];
    out[key] = value;
  }
  return out;
}

function isArrayKey(key: string): boolean {
  return configSchema.shape[key as keyof typeof configSchema.shape]?.def.innerType.type === 'array';
}

/** Validates a merged config object; throws ConfigError naming every bad key. */
export function parseConfig(input: unknown): GatewayConfig {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(`invalid configuration: ${describeIssues(result.error)}`);
  return result.data;
}

/** Loads the YAML file (when given), then applies environment overrides, then validates. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let fromFile: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
    }
    try {
      fromFile = parseYaml(text) ?? {};
    } catch (error) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(error as Error).message}`);
    }
    if (typeof fromFile !== 'object' || Array.isArray(fromFile)) {
      throw new ConfigError(`config file ${file} must hold a mapping of keys to values`);
    }
  }
  return parseConfig({ ...(fromFile as object), ...envOverrides(env) });
}
