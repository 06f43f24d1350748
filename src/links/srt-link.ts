import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { closeSecretOptions, SECRET_OPTIONS_ARGS, secretOptionsFile } from '../ffmpeg/secret-options.js';
import type { DestinationResolver } from '../security/destination-policy.js';
import { scrubDestination, type Destination } from './destination.js';
import { FFMPEG_QUIET, FfmpegLink, FLV_STDIN, type FfmpegLinkSettings } from './ffmpeg-link.js';
import { type FailureKind, OpenError } from './failures.js';
import type { LinkFactory } from './link.js';

/** SRT's usual payload: seven MPEG-TS packets. */
const PACKET_SIZE = 1316;

export interface SrtLinkSettings extends FfmpegLinkSettings {
  ffmpegPath: string;
  /** Starts ffmpeg through the gateway's supervisor, with `fd3` as its descriptor 3. */
  spawn: SpawnFfmpeg;
  resolveDestination: DestinationResolver;
}

/** Starts ffmpeg with these arguments, and `fd3` as its descriptor 3 when given. */
export type SpawnFfmpeg = (args: readonly string[], fd3?: number) => FfmpegProcess;

/**
 * ffmpeg's arguments for one SRT session: FLV from standard input, copied (H.264 and AAC as they
 * are) into MPEG-TS over SRT in caller mode, to `address`. The SRT options go as ffmpeg options
 * rather than in the URL, so their values reach libsrt exactly as given (its URL options are not
 * unescaped).
 */
export function srtArgs(destination: Destination, address: string, connectTimeoutMs: number): string[] {
  return [...FFMPEG_QUIET, ...FLV_STDIN, '-flush_packets', '1', ...srtOutput(destination, address, connectTimeoutMs)];
}

/** The secret SRT options (stream id, passphrase), for `secretOptionsFile`; undefined when there are none. */
export function srtSecrets(destination: Destination): Record<string, string> | undefined {
  const { streamId, passphrase } = destination.srt ?? {};
  if (streamId === undefined && passphrase === undefined) return undefined;
  return {
    ...(streamId !== undefined ? { srt_streamid: streamId } : {}),
    ...(passphrase !== undefined ? { passphrase } : {}),
  };
}

/**
 * The output part of ffmpeg's arguments: MPEG-TS to the SRT destination at `address`, its options.
 * The secret ones are read from descriptor 3 (`srtSecrets`, `spawnSrt`), never written here.
 */
export function srtOutput(destination: Destination, address: string, connectTimeoutMs: number): string[] {
  const srt = destination.srt ?? {};
  const host = address.includes(':') ? `[${address}]` : address;
  return [
    '-f',
    'mpegts',
    ...(srtSecrets(destination) ? SECRET_OPTIONS_ARGS : []),
    ...(srt.keyLength !== undefined ? ['-pbkeylen', String(srt.keyLength)] : []),
    // libsrt takes the latency in microseconds.
    ...(srt.latencyMs !== undefined ? ['-latency', String(srt.latencyMs * 1000)] : []),
    '-connect_timeout',
    String(connectTimeoutMs),
    '-pkt_size',
    String(PACKET_SIZE),
    `srt://${host}:${destination.port}?mode=caller`,
  ];
}

/** Why an SRT session's ffmpeg ended, from its last lines (scrubbed), and what kind of failure it is. */
export function srtFailure(lines: readonly string[], destination: Destination): { reason: string; kind: FailureKind } {
  const text = lines.join('\n');
  if (/Incorrect passphrase|BADSECRET/i.test(text))
    return { reason: 'the SRT destination refused the passphrase', kind: 'rejected' };
  if (/passphrase|NOSECRET|KMREQ/i.test(text))
    return { reason: 'the SRT destination asks for a passphrase (or another one)', kind: 'rejected' };
  const rejected = /REJECT\w*[^:]*:\s*(.+?)(?: - not processing further)?$/im.exec(text);
  if (rejected)
    return {
      reason: `the SRT destination refused the connection: ${scrubDestination(rejected[1]!, destination)}`,
      kind: 'rejected',
    };
  if (/Connection setup failure|connection time ?out|timed out/i.test(text))
    return { reason: 'the SRT destination did not answer (connection timed out)', kind: 'unreachable' };
  // libsrt says no more of a caller nobody answered.
  if (/Connection to srt:\S* failed/i.test(text) || /^srt:\S*: Input\/output error$/m.test(text))
    return { reason: 'the SRT destination did not answer', kind: 'unreachable' };
  const last =
    [...lines].reverse().find((l) => /error|fail|refused|lost|broken/i.test(l)) ?? lines.at(-1) ?? 'ffmpeg ended';
  return { reason: `SRT output ended: ${scrubDestination(last.trim(), destination)}`, kind: 'unreachable' };
}

/** Starts an ffmpeg whose output is `destination`, its secret options on descriptor 3. */
export async function spawnSrt(
  spawn: SpawnFfmpeg,
  args: readonly string[],
  destination: Destination,
): Promise<FfmpegProcess> {
  const secrets = srtSecrets(destination);
  const fd = secrets ? await secretOptionsFile(secrets) : undefined;
  let ffmpeg: FfmpegProcess;
  try {
    ffmpeg = spawn(args, fd);
  } catch (error) {
    closeSecretOptions(fd);
    throw error;
  }
  // The spawner opens it again for ffmpeg: it is closed here once ffmpeg has started (or could not).
  void ffmpeg.started.then(() => closeSecretOptions(fd));
  return ffmpeg;
}

/** Links to one SRT destination: the first to `pinnedAddress`, every later one looked up and checked again. */
export function srtLinks(destination: Destination, settings: SrtLinkSettings, pinnedAddress?: string): LinkFactory {
  let pinned = pinnedAddress;
  return async () => {
    const address =
      pinned ??
      (await settings.resolveDestination(destination.host, destination.port).catch((error: Error) => {
        throw new OpenError(
          `could not publish to the destination: ${scrubDestination(error.message, destination)}`,
          'rejected',
        );
      }));
    pinned = undefined;
    const output = { failure: (lines: readonly string[]) => srtFailure(lines, destination) };
    return new FfmpegLink(
      await spawnSrt(settings.spawn, srtArgs(destination, address, settings.connectTimeoutMs), destination),
      output,
      settings,
    );
  };
}
