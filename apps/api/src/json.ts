import type { Context, TypedResponse } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { JSONParsed } from 'hono/utils/types'
import type { Json } from './serialize.js'

/**
 * Sends JSON text that was serialised ahead of time, typed as the value it encodes, so that a
 * handler's route still checks which body goes with which status.
 */
export function sendJson<T, S extends ContentfulStatusCode>(
  c: Context,
  text: Json<T>,
  status: S,
): Response & TypedResponse<JSONParsed<T>, S, 'json'> {
  c.header('content-type', 'application/json')
  return c.body(text, status) as unknown as Response & TypedResponse<JSONParsed<T>, S, 'json'>
}
