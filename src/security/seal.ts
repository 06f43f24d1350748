import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encrypts what is kept at rest (a push's destination, with its stream key and password) with
 * AES-256-GCM, under a key derived from the configured secret. A sealed value is
 * `v1.<base64url(iv | ciphertext | tag)>`: a dump of the store shows no part of what it holds, and
 * a value changed, cut or sealed under another secret is refused rather than misread.
 */
export class Sealer {
  readonly #key: Buffer;

  /** `purpose` separates keys derived from one secret for different uses. */
  constructor(secret: string, purpose: string) {
    this.#key = Buffer.from(hkdfSync('sha256', secret, 'webrtc-rtmp-gateway', purpose, 32));
  }

  seal(value: unknown): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return `${VERSION}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
  }

  /** The value sealed; throws when it was not sealed under this secret, or was changed. */
  open(sealed: string): unknown {
    const [version, data, extra] = sealed.split('.');
    if (version !== VERSION || data === undefined || extra !== undefined) throw new Error('not a sealed value');
    const bytes = Buffer.from(data, 'base64url');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('a sealed value cut short');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, IV_BYTES));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      const plain = Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return JSON.parse(plain.toString('utf8'));
    } catch {
      throw new Error('a sealed value that does not open with this secret (another secret, or changed)');
    }
  }
}
