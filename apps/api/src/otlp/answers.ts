import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { contentTypeOf, encodeStatus, encodingOf, RpcCode } from './wire.js'

// OTLP's errors are a google.rpc.Status in the request's encoding, not the API's error shape:
// what the middleware shared with the API refuses (a missing key 401, the rate limit 429 with
// Retry-After, load shedding and a store that is down 503) is answered as a Status here, with
// the same status and headers. An exporter retries only 429, 502, 503 and 504.

const CODES: Record<number, number> = {
  400: RpcCode.INVALID_ARGUMENT,
  401: RpcCode.UNAUTHENTICATED,
  403: RpcCode.PERMISSION_DENIED,
  404: RpcCode.NOT_FOUND,
  409: RpcCode.ABORTED,
  413: RpcCode.RESOURCE_EXHAUSTED,
  429: RpcCode.RESOURCE_EXHAUSTED,
  500: RpcCode.INTERNAL,
  503: RpcCode.UNAVAILABLE,
}

export const otlpAnswers: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next()
  const res = c.res
  if (res.status < 400 || !res.headers.get('content-type')?.startsWith('application/json')) return
  // The handler's own answers are OTLP already; an API error is JSON with `__typename: error`.
  let error: { __typename?: string; code?: string; message?: string }
  try {
    error = JSON.parse(await res.clone().text()) as typeof error
  } catch {
    return
  }
  if (error?.__typename !== 'error') return
  const encoding = encodingOf(c.req.header('content-type')) ?? 'json'
  const headers = new Headers(res.headers)
  headers.set('content-type', contentTypeOf(encoding))
  headers.delete('content-length')
  c.res = new Response(
    encodeStatus(encoding, CODES[res.status] ?? RpcCode.UNKNOWN, `${error.code ?? 'error'}: ${error.message ?? ''}`),
    { status: res.status, headers },
  )
}
