import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.js';

export interface SecretSource {
  secret?: string;
  secret_env?: string;
  secret_file?: string;
}

const MIN_LENGTH = 16;

/**
 * Reads a configured secret from where the configuration says it is: inline, an environment
 * variable, or a file (trailing newline removed). Errors name the key, never the value.
 */
export function readSecret(
  source: SecretSource,
  key: string,
  env: NodeJS.ProcessEnv = process.env,
  /** Secrets the gateway signs with are 16 characters at least; one another service issued is as it made it. */
  minLength = MIN_LENGTH,
): string {
  let value: string | undefined;
  if (source.secret !== undefined) value = source.secret;
  else if (source.secret_env !== undefined) {
    value = env[source.secret_env];
    if (value === undefined) throw new ConfigError(`${key}: environment variable ${source.secret_env} is not set`);
  } else if (source.secret_file !== undefined) {
    try {
      value = readFileSync(source.secret_file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new ConfigError(
        `${key}: cannot read ${source.secret_file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  if (value === undefined || value.length < minLength)
    throw new ConfigError(`${key}: the secret must be at least ${minLength} characters`);
  return value;
}
