/**
 * The gateway's error classes. Each carries a stable code; `statusFor` is the one place that maps
 * codes to HTTP statuses, so routes never choose statuses themselves.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'not_found'
  | 'conflict'
  | 'unsupported_media_type'
  | 'not_supported'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  not_supported: 400,
  not_found: 404,
  conflict: 409,
  unsupported_media_type: 415,
  internal: 500,
};

export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field the error is about, when there is one (e.g. `rtmpUrl`, `options.action`). */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

export const invalid = (field: string, message: string): GatewayError =>
  new GatewayError('invalid_request', `${field}: ${message}`, field);

export const notFound = (message: string): GatewayError => new GatewayError('not_found', message);

export const conflict = (message: string): GatewayError => new GatewayError('conflict', message);

export function statusFor(code: ErrorCode): number {
  return STATUS[code];
}
