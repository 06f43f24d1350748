import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ConfigError } from '../config/load.js';

/** Debian's and Ubuntu's bundle of the CAs the system trusts. */
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The certificate authorities trusted for RTMPS: the system store (Node's own bundle where the
 * system has none) plus the PEM file the configuration names. Read once, at start-up, so that a
 * missing or unreadable file is a configuration error and not a failure at the first push.
 */
export function rtmpsTrust(extraCaFile: string, systemBundle = SYSTEM_BUNDLE): string[] {
  let system: string[];
  try {
    system = [readFileSync(systemBundle, 'utf8')];
  } catch {
    system = [...rootCertificates];
  }
  if (!extraCaFile) return system;
  let extra: string;
  try {
    extra = readFileSync(extraCaFile, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `rtmps_ca_file: cannot read ${extraCaFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  if (!extra.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(`rtmps_ca_file: ${extraCaFile} holds no PEM certificate`);
  return [...system, extra];
}
