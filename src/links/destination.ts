import { invalid } from '../core/errors.js';
import type { RtmpCredentials } from '../rtmp/auth.js';

/**
 * A destination parsed from a request's `rtmpUrl`: RTMP(S), SRT, or a recording (`record://`, MP4
 * files in `record_dir`: no host, nothing secret). `url`, `streamName` (in
 * full-URL mode) and `query` are secret and go only into the connection; everything that reaches a
 * log, a metric or an API listing uses `redactedUrl` and `redactedStreamName`. `secrets` lists every
 * substring to scrub from a destination's error messages.
 */
export interface Destination {
  protocol: 'rtmp' | 'rtmps' | 'srt' | 'record';
  host: string;
  port: number;
  /** Application (and instance) path, without slashes at either end. */
  app: string;
  /** The stream name published on the RTMP server. */
  streamName: string;
  /** The URL's query string without `?` (secret: its values may be credentials), or "". */
  query: string;
  /** The query goes to `connect` alone, not to the published name (YouTube's backup form, as OBS sends it). */
  queryInAppOnly?: boolean;
  /** From `rtmp://user:password@host/app`, for servers that ask for RTMP authentication (secret). */
  credentials?: RtmpCredentials;
  /** `protocol://host:port/app`, the tcUrl of the RTMP connect (without the query). */
  tcUrl: string;
  /** The rtmpUrl as the client gave it (secret): the push's identity with the stream. */
  requestedUrl: string;
  /** The full destination URL (secret): identifies a push. Do not log it: use `redactedUrl`. */
  url: string;
  redactedUrl: string;
  redactedRequestedUrl: string;
  redactedStreamName: string;
  secrets: string[];
  /** An SRT destination's settings (`app` and `tcUrl` are empty then). */
  srt?: SrtSettings;
}

/** What an `srt://` URL may set; `streamId` and `passphrase` are secret. */
interface SrtSettings {
  streamId?: string;
  passphrase?: string;
  /** The receiver's buffer (SRTO_LATENCY), in milliseconds. */
  latencyMs?: number;
  /** AES key length in bytes, with a passphrase. */
  keyLength?: 16 | 24 | 32;
}

export interface NamingRules {
  prefix: string;
  /** Take the stream name from the URL's last path segment instead of prefix + published name. */
  fullUrl: boolean;
}

/** The rules of one request: its `rtmpTransponderFullUrl`, when given, in place of the default. */
export function withFullUrl(naming: NamingRules, fullUrl: boolean | undefined): NamingRules {
  return { prefix: naming.prefix, fullUrl: fullUrl ?? naming.fullUrl };
}

const MASK = '***';
const MAX_URL_LENGTH = 2048;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * A part of the URL as it reaches a process or a socket (decoded): refused when it holds a control
 * character, which the raw URL hides as `%00`, `%0a`… The message names the part, never its value.
 */
function checkDecoded(field: string, part: string, value: string): void {
  if (CONTROL.test(value))
    throw invalid(field, `${part} must not contain control characters (percent-encoded ones included)`);
}

function lenientDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `decodeURIComponent`, or the refusal naming the part. */
function decoded(field: string, part: string, raw: string): string {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw invalid(field, `${part} is badly percent-encoded`);
  }
  checkDecoded(field, part, value);
  return value;
}

/**
 * Parses and checks an RTMP URL and derives the name published on the server:
 * prefix mode `rtmp://host/app` + stream `test` → `rtmp://host/app/rtmp_test`;
 * full-URL mode `rtmp://host/app/KEY` → stream name `KEY` (a stream key: redacted everywhere).
 */
export function parseDestination(
  rtmpUrl: string,
  publishedName: string,
  rules: NamingRules,
  field = 'rtmpUrl',
): Destination {
  if (rtmpUrl.length > MAX_URL_LENGTH) throw invalid(field, `must be at most ${MAX_URL_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(rtmpUrl)) throw invalid(field, 'must not contain spaces or control characters');
  if (/^srt:\/\//i.test(rtmpUrl)) return parseSrtDestination(rtmpUrl, field);
  if (/^record:/i.test(rtmpUrl)) return recordDestination(rtmpUrl, field);
  if (!/^rtmps?:\/\//i.test(rtmpUrl)) throw invalid(field, 'must start with rtmp://, rtmps://, srt:// or be record://');
  // YouTube's backup ingest writes its key after the query (`rtmp://b.rtmp.youtube.com/live2?backup=1/KEY`):
  // the key is the URL's last path segment, the query the application's.
  const keyAfterQuery = /^rtmps?:\/\/([^/:?#@]+\.)?youtube\.com[:/]/i.test(rtmpUrl)
    ? /^(rtmps?:\/\/[^?#]*)\?([^/?#]*)\/([^/?#]+)$/i.exec(rtmpUrl)
    : null;
  let parsed: URL;
  try {
    parsed = new URL(keyAfterQuery ? `${keyAfterQuery[1]}/${keyAfterQuery[3]}?${keyAfterQuery[2]}` : rtmpUrl);
  } catch {
    throw invalid(field, 'is not a valid URL');
  }
  const protocol = parsed.protocol === 'rtmps:' ? 'rtmps' : 'rtmp';
  if (!parsed.hostname) throw invalid(field, 'has no host');
  if (parsed.hash) throw invalid(field, 'must not contain a fragment (#)');
  if (!/^[A-Za-z0-9.\-[\]:]+$/.test(parsed.hostname)) throw invalid(field, 'has an invalid host');
  const port = parsed.port ? Number(parsed.port) : protocol === 'rtmps' ? 443 : 1935;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(field, 'has a port outside 1-65535');
  const segments = parsed.pathname.split('/').filter(Boolean).map(decodeSegment(field));
  if (segments.length === 0) throw invalid(field, 'needs an application path, e.g. rtmp://host/live');

  let app: string;
  let streamName: string;
  if (rules.fullUrl) {
    if (segments.length < 2)
      throw invalid(field, 'needs an application and a stream name (rtmp://host/app/stream) in full-URL mode');
    streamName = segments[segments.length - 1]!;
    app = segments.slice(0, -1).join('/');
  } else {
    app = segments.join('/');
    streamName = `${rules.prefix}${publishedName}`;
  }

  const credentials = parseCredentials(parsed, field);
  const userinfo = parsed.username ? `${parsed.username}${parsed.password ? `:${parsed.password}` : ''}@` : '';
  const redactedUserinfo = parsed.username ? `${parsed.username}${parsed.password ? `:${MASK}` : ''}@` : '';
  const query = parsed.search;
  // Each query part is a secret: its value, or a bare word (`?TOKEN`) itself.
  const queryParts = query
    .slice(1)
    .split('&')
    .filter(Boolean)
    .map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? { key: undefined, value: part } : { key: part.slice(0, eq), value: part.slice(eq + 1) };
    });
  // Servers decode the query: what it decodes to is checked (a `%` that decodes to nothing is sent as it is).
  for (const part of queryParts)
    for (const text of [part.key ?? '', part.value])
      checkDecoded(field, 'a query parameter', lenientDecode(text.replace(/\+/g, ' ')));
  const redactedQuery = queryParts.length
    ? `?${queryParts.map((p) => (p.key === undefined ? MASK : `${p.key}=${MASK}`)).join('&')}`
    : '';
  const redactedStreamName = rules.fullUrl ? MASK : streamName;
  const hostPort = `${parsed.host.replace(/:\d+$/, '')}:${port}`;
  const base = `${protocol}://${userinfo}${hostPort}/${app}`;
  const rawSegments = parsed.pathname.split('/').filter(Boolean);
  // In prefix mode, what follows the application name is often a stream key pasted with the
  // platform's URL (`rtmp://host/app/KEY`): it goes to the server as the application instance, and
  // is shown as `***` everywhere else.
  const hiddenSegments = rules.fullUrl ? [] : rawSegments.slice(1);
  const redactedApp = rules.fullUrl ? app : [segments[0]!, ...hiddenSegments.map(() => MASK)].join('/');
  const redactedBase = `${protocol}://${redactedUserinfo}${hostPort}/${redactedApp}`;

  const secrets = [
    ...hiddenSegments.flatMap((segment) => spellings(segment)),
    ...spellings(parsed.password),
    ...spellings(credentials?.password ?? ''),
    ...queryParts.flatMap((p) => spellings(p.value)),
    ...(rules.fullUrl ? [...spellings(rawSegments.at(-1)!), ...spellings(streamName)] : []),
  ].filter((s) => s.length >= 3);

  const url = `${base}/${streamName}${query}`;
  return {
    protocol,
    host: canonicalHost(parsed.hostname),
    port,
    app,
    streamName,
    query: query.replace(/^\?/, ''),
    ...(keyAfterQuery ? { queryInAppOnly: true } : {}),
    credentials,
    tcUrl: `${protocol}://${hostPort}/${app}`,
    requestedUrl: rtmpUrl,
    url,
    redactedUrl: `${redactedBase}/${redactedStreamName}${redactedQuery}`,
    // In full-URL mode the requested URL ends with the stream name; in prefix mode it ends at the app.
    redactedRequestedUrl: rules.fullUrl ? `${redactedBase}/${MASK}${redactedQuery}` : `${redactedBase}${redactedQuery}`,
    redactedStreamName,
    secrets: [...new Set(secrets)].sort((a, b) => b.length - a.length),
  };
}

const SRT_OPTIONS = ['streamid', 'passphrase', 'latency', 'pbkeylen', 'mode'];
const MAX_SRT_LATENCY_MS = 60_000;

/**
 * `srt://host:port?streamid=...&passphrase=...&latency=...`: MPEG-TS over SRT, the gateway calling
 * the destination. `streamid` and `passphrase` are secrets; `latency` is in milliseconds (as in
 * SRT's own SRTO_LATENCY and most encoders' settings). The stream's name is the `streamid`.
 */
function parseSrtDestination(srtUrl: string, field: string): Destination {
  let parsed: URL;
  try {
    parsed = new URL(srtUrl);
  } catch {
    throw invalid(field, 'is not a valid URL');
  }
  if (!parsed.hostname) throw invalid(field, 'has no host');
  if (!/^[A-Za-z0-9.\-[\]:]+$/.test(parsed.hostname)) throw invalid(field, 'has an invalid host');
  if (!parsed.port) throw invalid(field, 'needs a port (srt://host:port): SRT has no default one');
  const port = Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(field, 'has a port outside 1-65535');
  if (parsed.username || parsed.password)
    throw invalid(field, 'takes no user or password: an SRT destination is secured by its passphrase');
  if (parsed.pathname !== '' && parsed.pathname !== '/')
    throw invalid(field, 'takes no path: an SRT destination names its stream with ?streamid=');
  if (parsed.hash) throw invalid(field, 'must not contain a fragment (#)');
  const settings: SrtSettings = {};
  const seen = new Set<string>();
  for (const [key, value] of parsed.searchParams) {
    checkDecoded(field, SRT_OPTIONS.includes(key) ? key : 'an SRT option', value);
    if (!SRT_OPTIONS.includes(key))
      throw invalid(field, `has an SRT option this gateway does not set: ${key} (it takes ${SRT_OPTIONS.join(', ')})`);
    if (seen.has(key)) throw invalid(field, `gives the SRT option ${key} twice`);
    seen.add(key);
    if (key === 'streamid') {
      if (!value || value.length > 512) throw invalid(field, 'streamid must be 1-512 characters');
      settings.streamId = value;
    } else if (key === 'passphrase') {
      if (value.length < 10 || value.length > 79)
        throw invalid(field, "passphrase must be 10-79 characters (SRT's rule)");
      settings.passphrase = value;
    } else if (key === 'latency') {
      const ms = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!(ms <= MAX_SRT_LATENCY_MS))
        throw invalid(field, `latency is in milliseconds: a whole number from 0 to ${MAX_SRT_LATENCY_MS}`);
      settings.latencyMs = ms;
    } else if (key === 'pbkeylen') {
      if (!['16', '24', '32'].includes(value)) throw invalid(field, 'pbkeylen must be 16, 24 or 32');
      settings.keyLength = Number(value) as 16 | 24 | 32;
    } else if (value !== 'caller') {
      throw invalid(field, 'mode must be caller: the gateway connects to the destination');
    }
  }
  if (settings.keyLength && !settings.passphrase) throw invalid(field, 'pbkeylen needs a passphrase');
  const hostPort = `${parsed.host.replace(/:\d+$/, '')}:${port}`;
  const query = parsed.search.replace(/^\?/, '');
  const redactedQuery = [...parsed.searchParams]
    .map(([key, value]) => `${key}=${key === 'streamid' || key === 'passphrase' ? MASK : value}`)
    .join('&');
  const secrets = [
    settings.streamId,
    settings.passphrase,
    ...query
      .split('&')
      .filter((p) => /^(streamid|passphrase)=/.test(p))
      .map((p) => p.slice(p.indexOf('=') + 1)),
  ]
    .filter((s): s is string => s !== undefined)
    .flatMap((s) => spellings(s))
    .filter((s) => s.length >= 3);
  const url = `srt://${hostPort}${query ? `?${query}` : ''}`;
  const redactedUrl = `srt://${hostPort}${redactedQuery ? `?${redactedQuery}` : ''}`;
  return {
    protocol: 'srt',
    host: canonicalHost(parsed.hostname),
    port,
    app: '',
    streamName: settings.streamId ?? '',
    query,
    tcUrl: '',
    requestedUrl: srtUrl,
    url,
    redactedUrl,
    redactedRequestedUrl: redactedUrl,
    redactedStreamName: settings.streamId ? MASK : '',
    secrets: [...new Set(secrets)].sort((a, b) => b.length - a.length),
    srt: settings,
  };
}

/**
 * A recording: `record://`, and where to keep its parts (`?storage=local` or `?storage=s3`; none:
 * as `record_s3` says); where and how it records is the gateway's configuration.
 */
const RECORD_URL = 'record://';
const RECORD_FORMS = /^record:\/\/(?:\?storage=(local|s3))?$/i;

/** A `record://` URL's storage (`{}`: as configured), or undefined for a URL that is not a recording's. */
export function recordingUrl(url: string): { storage?: 'local' | 's3' } | undefined {
  const form = RECORD_FORMS.exec(url);
  if (!form) return undefined;
  return form[1] ? { storage: form[1].toLowerCase() as 'local' | 's3' } : {};
}

function recordDestination(url: string, field: string): Destination {
  const form = recordingUrl(url);
  if (!form)
    throw invalid(
      field,
      `a recording is asked for with ${RECORD_URL}, or ${RECORD_URL}?storage=local or ?storage=s3 ` +
        '(record_dir and record_* say where and how)',
    );
  const query = form.storage ? `storage=${form.storage}` : '';
  const canonical = query ? `${RECORD_URL}?${query}` : RECORD_URL;
  const none = {
    host: '',
    port: 0,
    app: '',
    streamName: '',
    tcUrl: '',
    redactedStreamName: '',
    secrets: [],
  };
  return {
    protocol: 'record',
    ...none,
    query,
    requestedUrl: url,
    url: canonical,
    redactedUrl: canonical,
    redactedRequestedUrl: canonical,
  };
}

/**
 * The forms a secret can come back in from a destination that echoes what it was sent (in a
 * refusal's description, say): as written in the URL, decoded, decoded with `+` as a space, and
 * encoded again both ways.
 */
function spellings(raw: string): string[] {
  const decode = (text: string): string | undefined => {
    try {
      return decodeURIComponent(text);
    } catch {
      return undefined;
    }
  };
  const forms = [raw, decode(raw), decode(raw.replace(/\+/g, ' '))].filter((f): f is string => f !== undefined);
  for (const form of [...forms])
    forms.push(
      encodeURIComponent(form),
      encodeURIComponent(form).replace(/%20/g, '+'),
      new URLSearchParams({ v: form }).toString().slice(2),
    );
  return forms;
}

function parseCredentials(parsed: URL, field: string): RtmpCredentials | undefined {
  if (!parsed.username && !parsed.password) return undefined;
  if (!parsed.username || !parsed.password)
    throw invalid(field, 'credentials need both a user name and a password (rtmp://user:password@host/app)');
  return {
    user: decoded(field, 'the user name', parsed.username),
    password: decoded(field, 'the password', parsed.password),
  };
}

function decodeSegment(field: string): (segment: string) => string {
  return (segment) => {
    const value = decoded(field, 'the path', segment);
    if (value.startsWith('-')) throw invalid(field, 'path segments must not start with "-"');
    if (!/^[\w.~!$&'()*+,;=:@%-]+$/.test(segment)) throw invalid(field, 'has characters not allowed in a path');
    return value;
  };
}

/**
 * The host as the network sees it. `rtmp:` is no special scheme to the URL parser, so legacy IPv4
 * spellings (`127.1`, `2130706433`, `0x7f000001`) are left as they are, and the system's resolver
 * would take them as addresses: they are normalised here, as a browser would, so every check sees
 * the real address.
 */
function canonicalHost(hostname: string): string {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (!/^[0-9a-fx.]+$/i.test(bare) || !/^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}\.?$/i.test(bare)) return bare;
  try {
    return new URL(`http://${bare}/`).hostname;
  } catch {
    return bare;
  }
}

/** Replaces every secret in `text` with `***`. Secrets are ordered longest first. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(MASK);
  return out;
}

/** Scrubs a message about the destination: the full URL becomes its redacted form, other secrets `***`. */
export function scrubDestination(text: string, destination: Destination): string {
  const withUrl = text.split(destination.url).join(destination.redactedUrl);
  return scrub(withUrl, destination.secrets);
}
