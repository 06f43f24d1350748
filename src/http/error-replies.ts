import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, statusFor, type ErrorCode } from '../core/errors.js';
import type { RouteTable } from './route-table.js';

/** What every error answer carries: `{error, message, field?}`, whoever made it (a route, fastify, Node's parser). */
function errorBody(error: GatewayError): { error: ErrorCode; message: string; field?: string } {
  return { error: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) };
}

/** Errors that fastify raises itself (before or around a route), in the gateway's words. */
function fromFramework(error: FastifyError): GatewayError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError('payload_too_large', 'body: larger than this route takes', 'body');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError(
        'unsupported_media_type',
        'Content-Type: this route takes no such content type',
        'Content-Type',
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError('invalid_request', 'body: its length is not what Content-Length says', 'body');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new GatewayError(
        'uri_too_long',
        'path: a part of the path is longer than the gateway takes (256 characters)',
        'path',
      );
    case 'FST_ERR_BAD_URL':
      return new GatewayError('invalid_request', 'path: not a valid URL path (a bad percent-encoding)', 'path');
  }
  const status = error.statusCode;
  if (status === 413) return new GatewayError('payload_too_large', 'body: larger than this route takes', 'body');
  if (status === 415)
    return new GatewayError(
      'unsupported_media_type',
      'Content-Type: not a content type this route takes',
      'Content-Type',
    );
  if (status !== undefined && status >= 400 && status < 500)
    return new GatewayError('invalid_request', `body: ${error.message}`, 'body');
  return undefined;
}

function send(reply: FastifyReply, error: GatewayError, request: FastifyRequest): FastifyReply {
  // RFC 6750: a token that was presented and refused is an invalid_token.
  if (error.code === 'unauthorized')
    reply.header(
      'www-authenticate',
      `Bearer realm="gateway"${request.headers.authorization ? ', error="invalid_token"' : ''}`,
    );
  if (error.retryAfterS !== undefined) reply.header('retry-after', String(error.retryAfterS));
  return reply.code(statusFor(error.code)).send(errorBody(error));
}

/**
 * One place answers every error: the routes' `GatewayError`s with their status, fastify's own
 * errors (bad bodies, sizes, content types, bad or too long paths) in the same shape, a path no
 * route has with 404 and a method the path is not served with 405 and `Allow`, both revealing
 * nothing of the request; anything else is a 500 whose text stays in the log.
 */
export function installErrorReplies(app: FastifyInstance, routes: RouteTable): void {
  app.setErrorHandler((error, request, reply) => {
    const known = error instanceof GatewayError ? error : fromFramework(error as FastifyError);
    if (known) {
      if (statusFor(known.code) >= 500) request.log.warn({ code: known.code, reason: known.message }, 'request failed');
      return send(reply, known, request);
    }
    request.log.error({ err: error }, 'unexpected error');
    return send(reply, new GatewayError('internal', 'internal error'), request);
  });
  app.setNotFoundHandler((request, reply) => {
    const allow = routes.allowed(request.raw.url ?? '/');
    if (allow.length === 0) return send(reply, new GatewayError('not_found', 'no such route'), request);
    reply.header('allow', allow.join(', '));
    return send(
      reply,
      new GatewayError('method_not_allowed', `method: this path takes ${allow.join(', ')}`, 'method'),
      request,
    );
  });
}

/** fastify's `frameworkErrors`: a path it cannot decode, or a path parameter over `maxParamLength`. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void send(
    reply,
    fromFramework(error) ?? new GatewayError('invalid_request', 'path: not a valid URL path', 'path'),
    request,
  );
}

/** Node's HTTP parser refused the request (headers too large, slow, not HTTP): answered in the gateway's shape and closed. */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new GatewayError('request_timeout', 'the request did not arrive in time (http_request_timeout_ms)')
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new GatewayError(
            'headers_too_large',
            'headers: the request line and headers are larger than the gateway takes (16 KiB)',
            'headers',
          )
        : new GatewayError('invalid_request', 'the request is not valid HTTP/1.1');
  const status = statusFor(refusal.code);
  const body = JSON.stringify(errorBody(refusal));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
