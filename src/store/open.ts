import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { ROOT } from '../core/paths.js';
import { createOwnFile, readOwnFile } from '../core/own-files.js';
import { readSecret } from '../security/secrets.js';
import { FilePushStore, type PushStore } from './push-log.js';
import { Sealer } from '../security/seal.js';

export interface KeptPushStore {
  store: PushStore;
  sealer: Sealer;
  /** The file the mixers started over REST are kept in (`MixerKeeper`). */
  mixersFile: string;
}

/** The sealing of kept pushes, one purpose of the secret. */
const PURPOSE = 'kept pushes';

/**
 * The store of a gateway on its own (`push_store_enabled`): `data_dir/pushes-<http_port>.log`,
 * sealed with the configured secret or, with none configured, one made at the first start and kept
 * beside it (`push-store.key`, mode 0600). Undefined when keeping is off.
 */
export async function openFileStore(config: GatewayConfig, log: Logger): Promise<KeptPushStore | undefined> {
  if (!config.push_store_enabled) return undefined;
  const folder = resolve(ROOT, config.data_dir);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const secret = await pushStoreSecret(config, folder, log);
  let store: FilePushStore;
  try {
    store = await FilePushStore.open(join(folder, `pushes-${config.http_port}.log`));
  } catch (error) {
    throw new ConfigError(`data_dir: ${(error as Error).message}`);
  }
  if (store.recovered.droppedBytes)
    log.warn(
      { kept: store.recovered.records, droppedBytes: store.recovered.droppedBytes },
      'the push store ended in a torn write (the gateway was killed while writing): cut there',
    );
  return { store, sealer: new Sealer(secret, PURPOSE), mixersFile: join(folder, `mixers-${config.http_port}.json`) };
}

async function pushStoreSecret(config: GatewayConfig, folder: string, log: Logger): Promise<string> {
  if (config.push_store_secret_env)
    return readSecret({ secret_env: config.push_store_secret_env }, 'push_store_secret_env');
  if (config.push_store_secret_file)
    return readSecret({ secret_file: resolve(ROOT, config.push_store_secret_file) }, 'push_store_secret_file');
  const file = join(folder, 'push-store.key');
  try {
    await createOwnFile(file, `${randomBytes(32).toString('base64url')}\n`);
    log.info(
      { file },
      'made the secret that seals kept pushes (set push_store_secret_env or push_store_secret_file to choose one)',
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new ConfigError(`data_dir: cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let secret: string;
  try {
    secret = (await readOwnFile(file)).trim();
  } catch (error) {
    throw new ConfigError(
      `data_dir: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'} (it must be a regular file, not a link)`,
    );
  }
  if (secret.length < 16) throw new ConfigError(`data_dir: ${file} holds no secret of 16 or more characters`);
  return secret;
}
