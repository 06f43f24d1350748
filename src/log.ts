import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * The gateway's logger. Secrets are redacted where they enter (see transponders/destination.ts);
 * these paths are a second line of defence for objects that might carry a raw URL or token.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
    level,
    redact: {
      paths: ['rtmpUrl', '*.rtmpUrl', 'req.headers.authorization', 'sdp', '*.sdp'],
      censor: '[redacted]',
    },
    },
    destination,
  );
}
