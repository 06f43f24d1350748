import { SecretDigest } from './bearer.js';

export type ApiScope = 'control' | 'metrics';

export interface ApiKey {
  id: string;
  scope: readonly ApiScope[];
  secret: string;
}

/**
 * The control API's keys. Every key is compared (no early exit) so the time taken does not tell
 * which key, or how much of one, matched.
 */
export class ApiKeyring {
  readonly #keys: { id: string; scope: ReadonlySet<ApiScope>; digest: SecretDigest }[];

  constructor(keys: readonly ApiKey[]) {
    this.#keys = keys.map((k) => ({ id: k.id, scope: new Set(k.scope), digest: new SecretDigest(k.secret) }));
  }

  get enabled(): boolean {
    return this.#keys.length > 0;
  }

  /** The id of the key the token is, when it may be used for `scope`. */
  verify(token: string, scope: ApiScope): string | undefined {
    let found: string | undefined;
    for (const key of this.#keys) {
      if (key.digest.matches(token) && key.scope.has(scope)) found ??= key.id;
    }
    return found;
  }
}
