/**
 * The gateway's error classes. Each carries a stable code; `statusFor` is the one place that maps
 * codes to HTTP statuses, so routes never choose statuses themselves.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'not_acceptable'
  | 'request_timeout'
  | 'conflict'
  | 'payload_too_large'
  | 'uri_too_long'
  | 'unsupported_media_type'
  | 'not_supported'
  | 'too_many_requests'
  | 'headers_too_large'
  | 'destination_refused'
  | 'destination_unreachable'
  | 'insufficient_storage'
  | 'internal'
  | 'unavailable';

const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  not_supported: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  // A viewer's offer that receives none of what the stream carries (WHEP: its decoders).
  not_acceptable: 406,
  request_timeout: 408,
  conflict: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  too_many_requests: 429,
  headers_too_large: 431,
  // Web Call Server answers 500 for any failed startup; the code says whose fault it was.
  destination_refused: 500,
  destination_unreachable: 500,
  internal: 500,
  unavailable: 503,
  // A recording refused or ended for want of disk space (RFC 4918's status).
  insufficient_storage: 507,
};

/** When to try again after a 429 or 503 that names no time of its own (seconds). */
const RETRY_AFTER_S = 5;

export class GatewayError extends Error {
  /** For 429 and 503: when to try again, in seconds (the `Retry-After` header); every one has it. */
  readonly retryAfterS?: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field the error is about, when there is one (e.g. `rtmpUrl`, `options.action`). */
    readonly field?: string,
    retryAfterS?: number,
  ) {
    super(message);
    this.name = 'GatewayError';
    this.retryAfterS =
      retryAfterS ?? (code === 'unavailable' || code === 'too_many_requests' ? RETRY_AFTER_S : undefined);
  }
}

export const invalid = (field: string, message: string): GatewayError =>
  new GatewayError('invalid_request', `${field}: ${message}`, field);

/** `field`: the request field that names what is not there. */
export const notFound = (message: string, field?: string): GatewayError =>
  new GatewayError('not_found', message, field);

export const conflict = (message: string, field?: string): GatewayError => new GatewayError('conflict', message, field);

/** The gateway is at a configured capacity: try again later. */
export const unavailable = (message: string, retryAfterS?: number): GatewayError =>
  new GatewayError('unavailable', message, undefined, retryAfterS);

/** One caller (a client address, a stream) is at its quota. */
export const tooMany = (message: string, retryAfterS?: number): GatewayError =>
  new GatewayError('too_many_requests', message, undefined, retryAfterS);

/** Every error code, as answers carry them. */
export const ERROR_CODES = Object.keys(STATUS) as ErrorCode[];

export function statusFor(code: ErrorCode): number {
  return STATUS[code];
}
