import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

/** `auto`: one readable line per event for a person at a terminal, JSON for everything else. */
export function resolveLogFormat(format: 'auto' | LogFormat, stream: { isTTY?: boolean } = process.stdout): LogFormat {
  return format === 'auto' ? (stream.isTTY ? 'pretty' : 'json') : format;
}

/**
 * The gateway's logger. Secrets are redacted where they enter (see links/destination.ts);
 * these paths are a second line of defence for objects that might carry a raw URL or token.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const options = {
    level,
    redact: {
      paths: ['rtmpUrl', '*.rtmpUrl', 'backupUrl', '*.backupUrl', 'req.headers.authorization', 'sdp', '*.sdp'],
      censor: '[redacted]',
    },
  };
  if (format === 'pretty') {
    const readable = pretty({
      destination: destination ?? 1,
      sync: true,
      singleLine: true,
      colorize: !destination && Boolean(process.stdout.isTTY),
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    return pino(options, readable);
  }
  return pino(options, destination);
}
