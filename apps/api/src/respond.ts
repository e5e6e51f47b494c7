import * as specValues from '@session-events/server-stubs/values'
import type { Context, TypedResponse } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { JSONParsed } from 'hono/utils/types'
import type { AppEnv } from './env.js'
import type { JsonBytes } from './serialize.js'

// Every response of the API is made here, with its headers: the request id and the API version
// on all of them, the rate limit's state on successes. They go in as a plain object when the
// Response is made: set on it afterwards, they would turn its headers into a Fetch `Headers`
// object that @hono/node-server then has to turn back into Node's, on every request.

/** The API version this server speaks, sent as `metorial-version` (the spec's `const`). */
export const API_VERSION = specValues.headers.MetorialVersion.schema.const

export function respond(
  c: Context<AppEnv>,
  body: string | Uint8Array | ReadableStream<Uint8Array>,
  status: number,
  extra?: Record<string, string>,
): Response {
  return new Response(body, { status, headers: responseHeaders(c, status, extra) })
}

/** The headers of a response: the API's own, then `extra`. */
export function responseHeaders(
  c: Context<AppEnv>,
  status: number,
  extra?: Record<string, string>,
): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'metorial-req-id': c.get('requestId'),
    'metorial-version': API_VERSION,
    // A browser takes the body for what content-type says and nothing else: a log line in a
    // JSON answer is never sniffed into HTML.
    'x-content-type-options': 'nosniff',
  }
  if (status < 300) Object.assign(headers, c.get('rateLimitHeaders'))
  if (extra) Object.assign(headers, extra)
  return headers
}

/**
 * JSON made ahead of time (serialize.ts), typed as the value it encodes, so that a handler's
 * route still checks which body goes with which status.
 */
export function sendJson<T, S extends ContentfulStatusCode>(
  c: Context<AppEnv>,
  body: JsonBytes<T>,
  status: S,
  extra?: Record<string, string>,
): Response & TypedResponse<JSONParsed<T>, S, 'json'> {
  return respond(c, body, status, extra) as Response & TypedResponse<JSONParsed<T>, S, 'json'>
}
