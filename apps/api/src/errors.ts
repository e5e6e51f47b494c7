import type { Error as ApiErrorBody, ValidationIssue } from '@session-events/server-stubs'
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { AppEnv } from './env.js'
import { respond } from './respond.js'

// The one place that builds error bodies. Every non-2xx response of the API has this shape,
// whatever its status: { __typename: "error", ok: false, status, code, message, … }.

export type { ApiErrorBody }

/** RFC 9110 asks every 401 to say how to authenticate; RFC 6750 says why a token was refused. */
const challenge = (error?: 'invalid_request' | 'invalid_token') => ({
  'WWW-Authenticate': `Bearer realm="session-events"${error ? `, error="${error}"` : ''}`,
})

const NOT_FOUND_HINT =
  'Make sure the resource you are trying to access exists, that you have access to it and that it has not been deleted.'

export class ApiError extends Error {
  readonly body: ApiErrorBody
  readonly headers: Record<string, string>
  override name = 'ApiError'
  constructor(body: Omit<ApiErrorBody, '__typename' | 'ok'>, headers: Record<string, string> = {}) {
    super(body.message)
    this.body = { __typename: 'error', ok: false, ...body }
    this.headers = headers
  }
  get status(): ContentfulStatusCode {
    return this.body.status as ContentfulStatusCode
  }
}

export const errors = {
  invalidData: (issues: ValidationIssue[]) =>
    new ApiError({ status: 400, code: 'invalid_data', message: 'The provided data is invalid.', errors: issues }),
  badRequest: (message: string, hint?: string) =>
    new ApiError({ status: 400, code: 'bad_request', message, ...(hint && { hint }) }),
  missingAuthorization: () =>
    new ApiError(
      {
        status: 401,
        code: 'unauthorized',
        message: 'Missing Authorization header',
        hint: 'Send your secret key as `Authorization: Bearer metorial_sk_...`.',
      },
      challenge(),
    ),
  malformedAuthorization: () =>
    new ApiError(
      {
        status: 401,
        code: 'unauthorized',
        message: 'Invalid API key',
        hint: 'The Authorization header must be `Bearer ` followed by your secret key.',
      },
      challenge('invalid_request'),
    ),
  invalidKey: () =>
    new ApiError({ status: 401, code: 'unauthorized', message: 'Invalid API key' }, challenge('invalid_token')),
  revokedKey: () =>
    new ApiError(
      { status: 401, code: 'unauthorized', message: 'API key is expired or has been revoked' },
      challenge('invalid_token'),
    ),
  forbidden: () =>
    new ApiError({
      status: 403,
      code: 'forbidden',
      message: 'You do not have permission to access this resource.',
      hint: 'Publishable keys cannot read sessions: use a secret key (metorial_sk_...).',
    }),
  sessionNotFound: () =>
    new ApiError({
      status: 404,
      code: 'not_found',
      message: 'The requested session could not be found.',
      hint: NOT_FOUND_HINT,
      entity: 'session',
    }),
  sessionEventNotFound: () =>
    new ApiError({
      status: 404,
      code: 'not_found',
      message: 'The requested session-event could not be found.',
      hint: NOT_FOUND_HINT,
      entity: 'session_event',
    }),
  serverRunNotFound: () =>
    new ApiError({
      status: 404,
      code: 'not_found',
      message: 'The requested server-run could not be found.',
      hint: NOT_FOUND_HINT,
      entity: 'server_run',
    }),
  conflict: (message: string) => new ApiError({ status: 409, code: 'conflict', message }),
  idempotencyKeyInUse: (retryAfterSeconds = 1) =>
    new ApiError(
      {
        status: 409,
        code: 'idempotency_key_in_use',
        message: 'A request with this Idempotency-Key is still being processed.',
        hint: 'Retry after the number of seconds in the Retry-After header: you will get its answer.',
      },
      { 'Retry-After': String(retryAfterSeconds) },
    ),
  idempotencyKeyReused: () =>
    new ApiError({
      status: 422,
      code: 'idempotency_key_reused',
      message: 'This Idempotency-Key was used with another request.',
      hint: 'Use a new key for each new request; retry a request with its own key and the same body.',
    }),
  payloadTooLarge: (maxBytes: number) =>
    new ApiError({
      status: 413,
      code: 'payload_too_large',
      message: `The request body is larger than ${maxBytes} bytes.`,
      hint: 'Send the log lines in several smaller requests.',
    }),
  endpointNotFound: (method: string, path: string) =>
    new ApiError({
      status: 404,
      code: 'not_found',
      message: `The requested endpoint could not be found: ${method} ${path.slice(0, 200)}`,
      hint: 'Check the method and path against the API reference at /docs.',
      entity: 'endpoint',
    }),
  methodNotAllowed: (method: string, allowed: string[]) =>
    new ApiError(
      {
        status: 405,
        code: 'method_not_allowed',
        message: `The method ${method} is not allowed here. Allowed: ${allowed.join(', ')}.`,
      },
      { Allow: allowed.join(', ') },
    ),
  tooManyRequests: (retryAfterSeconds: number, headers: Record<string, string>) =>
    new ApiError(
      {
        status: 429,
        code: 'too_many_requests',
        message: 'Too many requests, please try again later.',
        hint: 'Wait the number of seconds in the Retry-After header before the next request.',
      },
      { ...headers, 'Retry-After': String(retryAfterSeconds) },
    ),
  tooManyStreams: (perKey: number) =>
    new ApiError(
      {
        status: 429,
        code: 'too_many_requests',
        message: `This API key holds ${perKey} streams already.`,
        hint: 'Close a stream you no longer read, or retry after the number of seconds in the Retry-After header.',
      },
      { 'Retry-After': '5' },
    ),
  overloaded: () =>
    new ApiError(
      {
        status: 503,
        code: 'service_unavailable',
        message: 'The server is overloaded, please try again in a moment.',
      },
      { 'Retry-After': '1' },
    ),
  internal: () =>
    new ApiError({ status: 500, code: 'internal_server_error', message: 'An internal server error occurred.' }),
  unavailable: (retryAfterSeconds = 1) =>
    new ApiError(
      {
        status: 503,
        code: 'service_unavailable',
        message: 'The service is temporarily unavailable, please try again later.',
      },
      { 'Retry-After': String(retryAfterSeconds) },
    ),
}

/** The response of an ApiError. */
export function errorResponse(c: Context<AppEnv>, error: ApiError): Response {
  return respond(c, JSON.stringify(error.body), error.status, error.headers)
}
