import type { Context, TypedResponse } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { JSONParsed } from 'hono/utils/types'
import type { AppEnv } from './env.js'
import type { JsonBytes } from './serialize.js'

// The API's responses carry a few headers of their own (the request id, the API version, the
// rate limit). Set on a Response after it is made, they turn its plain headers into a Fetch
// `Headers` object, which @hono/node-server then has to turn back into Node's, on every request.
// So the middleware puts them in the context as a plain object, and the responses made here
// carry them from the start. Any other response (404s, /healthz…) gets them from the middleware
// afterwards, the ordinary way.

const complete = new WeakSet<Response>()

/** Whether `response` was made here, with the API's headers in it. */
export const hasApiHeaders = (response: Response) => complete.has(response)

function respond(body: string | Uint8Array, status: number, headers: Record<string, string>): Response {
  const response = new Response(body, { status, headers })
  complete.add(response)
  return response
}

/** JSON (text or UTF-8 bytes) sent with the headers of every API response, and `extra`. */
export function sendJsonText(c: Context<AppEnv>, text: string | Uint8Array, status: number, extra?: Record<string, string>): Response {
  return respond(text, status, { 'content-type': 'application/json', ...c.get('responseHeaders'), ...extra })
}

/**
 * Sends JSON that was serialised ahead of time, typed as the value it encodes, so that a
 * handler's route still checks which body goes with which status. A success: it carries the
 * rate limit's headers too.
 */
export function sendJson<T, S extends ContentfulStatusCode>(
  c: Context<AppEnv>,
  body: JsonBytes<T>,
  status: S,
): Response & TypedResponse<JSONParsed<T>, S, 'json'> {
  return sendJsonText(c, body, status, c.get('rateLimitHeaders')) as Response & TypedResponse<JSONParsed<T>, S, 'json'>
}
