import { monotonicMs } from '../core/clock.js';
import type { SecureContext } from 'node:tls';
import { z } from 'zod';
import { GatewayError, invalid } from '../core/errors.js';
import { wcsBoolean } from '../core/validation.js';
import { RtmpPushClient, type RtmpStep } from '../rtmp/client.js';
import type { DestinationResolver } from '../security/destination-policy.js';
import { parseDestination, scrubDestination, withFullUrl, type Destination, type NamingRules } from './destination.js';
import type { CheckReport } from './check-report.js';
import { rtmpSession } from './rtmp-link.js';
import { FFMPEG_QUIET } from './ffmpeg-link.js';
import { spawnSrt, srtFailure, srtOutput, type SpawnFfmpeg } from './srt-link.js';
import { classifyFailure, errorCodeFor, type FailureKind } from './failures.js';

/** A check answers within this, whatever the destination does. */
const CHECK_TIMEOUT_MS = 4500;

export const checkRequestSchema = z.strictObject({
  rtmpUrl: z.string().min(1).max(2048),
  rtmpTransponderFullUrl: wcsBoolean().optional(),
  /** The stream the push would be of: names it in prefix mode (default `check`). */
  streamName: z.string().min(1).max(256).optional(),
  /** Also publish, then unpublish at once: tells whether the stream key is accepted (RTMP). */
  publish: wcsBoolean().optional(),
});
export type CheckRequest = z.output<typeof checkRequestSchema>;

export const checkReportSchema: z.ZodType<CheckReport> = z.strictObject({
  ok: z.boolean().describe('every step asked for succeeded'),
  rtmpUrl: z.string().describe('the destination, its secrets shown as ***'),
  reachable: z.boolean().describe('a connection was made and the server answered the handshake'),
  applicationAccepted: z
    .boolean()
    .nullable()
    .describe(
      'RTMP: connect accepted (the application exists and lets this client in); SRT: the session accepted; null: not reached',
    ),
  keyAccepted: z
    .boolean()
    .nullable()
    .describe(
      'RTMP with publish: the stream key accepted; SRT: the stream id and passphrase accepted; null: not asked or not reached',
    ),
  elapsedMs: z.number(),
  error: z
    .enum(['destination_refused', 'destination_unreachable', 'internal'])
    .optional()
    .describe('as a push would fail'),
  message: z.string().optional(),
});
export type { CheckReport };

export interface CheckSettings {
  naming: NamingRules;
  resolveDestination: DestinationResolver;
  flashVer: string;
  localAddress?: string;
  secureContext: SecureContext;
  /** Starts ffmpeg (an SRT check's handshake). */
  spawn: SpawnFfmpeg;
}

/** Makes the report from the steps a check took, and its failure if it failed. */
type Reporter = (
  steps: Omit<CheckReport, 'ok' | 'rtmpUrl' | 'elapsedMs' | 'error' | 'message'>,
  failure?: { kind: FailureKind; message: string },
) => CheckReport;

/**
 * Connects to a destination as a push would, sending no media: the destination policy and the
 * lookup, the connection (TLS for RTMPS), the RTMP handshake and `connect`, and with `publish`,
 * the publish then unpublish at once. An SRT destination gets the SRT handshake, which is where its
 * listener judges the stream id and the passphrase, and ends before any media. The report says how
 * far it got. A URL the gateway cannot use, or a host the policy refuses, is a 400 like a push's.
 */
export async function checkDestination(request: CheckRequest, settings: CheckSettings): Promise<CheckReport> {
  const startedAt = monotonicMs();
  const destination = parseDestination(
    request.rtmpUrl,
    request.streamName ?? 'check',
    withFullUrl(settings.naming, request.rtmpTransponderFullUrl),
    'rtmpUrl',
  );
  if (destination.protocol === 'record')
    throw invalid('rtmpUrl', 'a recording has no server to check (record_min_free_mb guards its disk)');
  const address = await settings.resolveDestination(destination.host, destination.port);
  const report: Reporter = (steps, failure) => ({
    ok: !failure,
    rtmpUrl: destination.redactedRequestedUrl,
    ...steps,
    elapsedMs: monotonicMs() - startedAt,
    ...(failure
      ? {
          error: errorCodeFor(failure.kind) as CheckReport['error'],
          message: scrubDestination(failure.message, destination),
        }
      : {}),
  });
  if (destination.protocol === 'srt') return checkSrt(destination, address, settings, report);
  const steps = new Set<RtmpStep>();
  const publish = request.publish ?? false;
  try {
    const rtmp = await RtmpPushClient.publish({
      ...rtmpSession(destination, address, settings),
      timeoutMs: CHECK_TIMEOUT_MS,
      connectOnly: !publish,
      onStep: (step) => steps.add(step),
    });
    await rtmp.close();
    return report({ reachable: true, applicationAccepted: true, keyAccepted: publish ? true : null });
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    const kind = classifyFailure(error);
    const message = (error as Error).message;
    return report(
      {
        reachable: steps.has('handshake'),
        applicationAccepted: steps.has('application') ? true : steps.has('handshake') ? false : null,
        keyAccepted: !publish || !steps.has('application') ? null : false,
      },
      { kind: steps.has('handshake') ? kind : 'unreachable', message },
    );
  }
}

async function checkSrt(
  destination: Destination,
  address: string,
  settings: CheckSettings,
  report: Reporter,
): Promise<CheckReport> {
  // A silent input that ends at once: ffmpeg opens the SRT session, writes no media, and closes it.
  const ffmpeg = await spawnSrt(
    settings.spawn,
    [
      ...FFMPEG_QUIET,
      '-f',
      'lavfi',
      '-i',
      'anullsrc=r=48000:cl=stereo',
      '-t',
      '0',
      '-c:a',
      'aac',
      ...srtOutput(destination, address, CHECK_TIMEOUT_MS - 500),
    ],
    destination,
  );
  const lines: string[] = [];
  let connected = false;
  ffmpeg.on('line', (line) => {
    lines.push(line);
    if (line.startsWith('Output #0')) connected = true;
  });
  const timer = setTimeout(() => void ffmpeg.kill(), CHECK_TIMEOUT_MS);
  await ffmpeg.closed;
  clearTimeout(timer);
  if (connected && ffmpeg.exitCode === 0)
    return report({ reachable: true, applicationAccepted: true, keyAccepted: true });
  const { reason, kind } = srtFailure(lines, destination);
  const answered = kind === 'rejected';
  return report(
    { reachable: answered, applicationAccepted: answered ? false : null, keyAccepted: answered ? false : null },
    { kind, message: reason },
  );
}
