import * as specValues from '@session-events/server-stubs/values'
import type { MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'

/**
 * The largest request body a write takes (the spec's `x-max-body-bytes` of PayloadTooLarge): 1,000
 * lines of 64 KiB would not fit, 1,000 of 5 KB do.
 */
export const MAX_BODY_BYTES = specValues.maxBodyBytes

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw errors.payloadTooLarge(MAX_BODY_BYTES)
  },
})

/**
 * 413 for a body over MAX_BODY_BYTES. A body that says its length is judged by it, from the
 * header alone: Hono's bodyLimit touches the body first, which makes @hono/node-server build a
 * Fetch Request and a web stream for it (255 to 612 µs of an append of 100 lines,
 * bench/README.md). A body sent in chunks is counted as it is read, and read no further than the
 * limit.
 */
export const bodySize: MiddlewareHandler<AppEnv> = async (c, next) => {
  const length = c.req.header('content-length')
  if (length === undefined || c.req.header('transfer-encoding') !== undefined) return limitBody(c, next)
  if (!/^\d+$/.test(length) || Number(length) > MAX_BODY_BYTES) throw errors.payloadTooLarge(MAX_BODY_BYTES)
  await next()
}
