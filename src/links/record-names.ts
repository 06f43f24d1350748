/**
 * How recordings (and thumbnails) are named: the tokens of `record_file_pattern`, Web Call Server's
 * among them, and the characters a name may hold.
 */

/** `20261124T102233Z`. */
export const compactTime = (at: Date): string =>
  at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/**
 * A stream's name (or a push's id) in a file name (a recording's, a thumbnail's): letters, digits,
 * `_`, `.`, `-`, the others `_`.
 */
export const safeStreamName = (stream: string): string => stream.replace(/[^\w.-]/g, '_');

/**
 * The longest recording name (characters): with `-<n>` (a name taken) and `-1000.mp4`, a part's name
 * stays within the 200 that REST accepts, and the recording's own files within a file name's 255.
 */
const NAME_MAX = 180;

/**
 * What a pattern's tokens stand for (`RECORD_NAME_TOKENS` of the configuration names the same); Web
 * Call Server's `stream_record_policy_template` names are among them.
 */
export function recordNameValues(stream: string, mediaSessionId: string, start: Date): Record<string, string> {
  const iso = start.toISOString(); // 2026-11-24T10:22:33.456Z
  const safeStream = safeStreamName(stream);
  const safeId = safeStreamName(mediaSessionId);
  return {
    stream: safeStream,
    streamName: safeStream,
    start: compactTime(start),
    startTime: String(start.getTime()),
    startTimeMillis: String(start.getTime()),
    date: iso.slice(0, 10),
    time: iso.slice(11, 19).replaceAll(':', '-'),
    id: safeId.slice(0, 8),
    mediaSessionId: safeId,
  };
}

/**
 * A recording's name from the pattern; characters of the stream name or the push's id other than
 * letters, digits, `_`, `.`, `-` become `_`, and so does a leading `.` or `-` (no hidden file, no
 * option-like name). The name is cut at 180 characters. Its parts add their index after it (`-001.mp4`).
 */
export function recordingName(pattern: string, stream: string, mediaSessionId: string, start: Date): string {
  const values = recordNameValues(stream, mediaSessionId, start);
  return pattern
    .replace(/\{(\w+)\}/g, (token, name: string) => values[name] ?? token)
    .replace(/[^\w.-]/g, '_') // a token the configuration would not have let in
    .replace(/^[.-]/, '_')
    .slice(0, NAME_MAX);
}
