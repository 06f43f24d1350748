import { createHash, randomBytes } from 'node:crypto';
import { RtmpError } from './errors.js';

export interface RtmpCredentials {
  user: string;
  /** Secret: goes only into the hashes sent to the server. */
  password: string;
}

/**
 * The RTMP authentication that Wowza, Adobe Media Server and Limelight ask publishers for (what
 * FMLE, OBS and ffmpeg answer). It takes up to three connections, each refused with a description
 * that says what the server wants next:
 *
 * 1. plain connect → `… code=403 need auth; authmod=adobe …`
 * 2. connect with app `…?authmod=adobe&user=U` → `… ?reason=needauth&user=U&salt=S&challenge=C&opaque=O`
 * 3. connect with app `…?authmod=adobe&user=U&challenge=C2&response=R&opaque=O` → accepted, or
 *    `?reason=authfailed`.
 *
 * For `authmod=adobe`, R = base64(md5(base64(md5(U + S + password)) + (O or C) + C2)), C2 our
 * random challenge. For `authmod=llnw` the server gives a nonce and R is an HTTP-digest-style hash.
 */
export class RtmpAuthenticator {
  #answered = false;

  constructor(private readonly credentials: RtmpCredentials | undefined) {}

  /**
   * Given the description of a refused connect, returns the query to add to the next connect's app
   * and tcUrl, or undefined when the refusal is not about authentication. Throws an RtmpError that
   * says what is wrong when authentication cannot go on.
   */
  next(description: string, app: string): string | undefined {
    const method = /authmod=(adobe|llnw)\b/.exec(description)?.[1] as 'adobe' | 'llnw' | undefined;
    if (!method) return undefined;
    const { credentials } = this;
    if (!credentials) {
      throw new RtmpError(
        `the destination requires a user name and password (${method} authentication): give them in the URL, rtmp://user:password@host/app`,
        'authentication',
      );
    }
    if (description.includes('reason=authfailed'))
      throw new RtmpError('the destination refused the user name or password', 'authentication');
    if (description.includes('reason=nosuchuser'))
      throw new RtmpError('the destination does not know the user name', 'authentication');
    if (this.#answered) throw new RtmpError(`the destination refused the ${method} authentication`, 'authentication');
    const user = encodeURIComponent(credentials.user);
    if (description.includes('code=403 need auth')) return `authmod=${method}&user=${user}`;

    const start = description.indexOf('?reason=needauth');
    if (start < 0)
      throw new RtmpError(`the destination asked for ${method} authentication without a challenge`, 'authentication');
    const params = rawParams(description.slice(start + 1).split(/\s/)[0]!);
    this.#answered = true;
    const clientChallenge = randomBytes(4).toString('hex');
    if (method === 'adobe') {
      const salt = params.get('salt') ?? '';
      const opaque = params.get('opaque');
      const challenge = params.get('challenge');
      const response = adobeResponse(credentials, salt, opaque ?? challenge ?? '', clientChallenge);
      const echoed = opaque === undefined ? '' : `&opaque=${opaque}`;
      return `authmod=adobe&user=${user}&challenge=${clientChallenge}&response=${response}${echoed}`;
    }
    const nonce = params.get('nonce') ?? '';
    const response = llnwResponse(credentials, app, nonce, clientChallenge);
    return `authmod=llnw&user=${user}&nonce=${nonce}&cnonce=${clientChallenge}&nc=${LLNW_NC}&response=${response}`;
  }
}

const LLNW_NC = '00000001';

function adobeResponse(
  credentials: RtmpCredentials,
  salt: string,
  serverChallenge: string,
  clientChallenge: string,
): string {
  const secret = md5(credentials.user + salt + credentials.password).toString('base64');
  return md5(secret + serverChallenge + clientChallenge).toString('base64');
}

/** Limelight's digest: realm "live", method "publish", the app with Wowza's default instance. */
function llnwResponse(credentials: RtmpCredentials, app: string, nonce: string, clientNonce: string): string {
  const ha1 = md5(`${credentials.user}:live:${credentials.password}`).toString('hex');
  const path = app.includes('/') ? app : `${app}/_definst_`;
  const ha2 = md5(`publish:/${path}`).toString('hex');
  return md5(`${ha1}:${nonce}:${LLNW_NC}:${clientNonce}:auth:${ha2}`).toString('hex');
}

/** `a=1&b=2` without decoding: base64 salts and challenges keep their '+', '/' and '=', as servers mean them. */
function rawParams(query: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const pair of query.split('&')) {
    const equals = pair.indexOf('=');
    if (equals > 0) params.set(pair.slice(0, equals), pair.slice(equals + 1));
  }
  return params;
}

function md5(text: string): Buffer {
  return createHash('md5').update(text).digest();
}
