import { createHash } from 'node:crypto'
import { IdempotencyKeyParamsSchema } from '@session-events/server-stubs'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'
import { respond } from '../respond.js'
import type { IdempotencyKeys } from '../store/idempotency.js'

/**
 * `Idempotency-Key` on a POST (the IETF draft "The Idempotency-Key HTTP Header Field"): the
 * first request with a key runs and its answer is kept (store/idempotency.ts); a retry with the
 * same key and the same request gets that answer again (a success with `Idempotent-Replayed:
 * true`); the
 * same key with another request, 422; while the first is still running, 409 with Retry-After.
 * Keys are per instance. An answer of 5xx is not kept: the request may not have run, and a
 * retry should run it. A key that the spec refuses (empty, too long) is left to the route's
 * validation.
 */
export function idempotency(keys: IdempotencyKeys): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = c.req.header('idempotency-key')
    if (c.req.method !== 'POST' || key === undefined || !IdempotencyKeyParamsSchema.safeParse(key).success)
      return next()
    const instanceId = c.get('instanceId')
    // The body is read once here; the route's validator reads it again from Hono's cache.
    const fingerprint = createHash('sha256')
      .update(`${c.req.method} ${c.req.path}\n`)
      .update(await c.req.text())
      .digest('hex')
    const claim = await keys.claim(instanceId, key, fingerprint)
    // The header says so on a replayed success; a replayed refusal is the same refusal again.
    if (claim.kind === 'answered')
      return respond(c, claim.body, claim.status, claim.status < 300 ? { 'Idempotent-Replayed': 'true' } : undefined)
    if (claim.kind === 'mismatch') throw errors.idempotencyKeyReused()
    if (claim.kind === 'in_flight') throw errors.idempotencyKeyInUse()
    let answered = false
    try {
      await next()
      answered = c.res.status < 500
      if (answered) await keys.complete(instanceId, key, c.res.status, await c.res.clone().text())
    } finally {
      if (!answered) await keys.release(instanceId, key)
    }
  }
}
