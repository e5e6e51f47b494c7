import { createHash } from 'node:crypto'
import { IdempotencyKeyParamsSchema } from '@session-events/server-stubs'
import type { Context, MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { errorResponse, errors } from '../errors.js'
import { respond } from '../respond.js'
import {
  IdempotencyKeyInUseError,
  IdempotencyKeyReusedError,
  RecordedRefusal,
  type IdempotencyClaim,
  type IdempotencyKeys,
} from '../store/types.js'

/**
 * `Idempotency-Key` on a POST (the IETF draft "The Idempotency-Key HTTP Header Field"): the
 * first request with a key runs and its answer is kept; a retry with the same key and the same
 * request gets that answer again (a success with `Idempotent-Replayed: true`, the resource it
 * named shown as it is now; a refusal as it was sent); the same key with another request, 422;
 * while the first is still running, 409 with Retry-After. Keys are per instance.
 *
 * A success is kept by the store in the write's own transaction (the handler hands the key to
 * the writer: claimOf); a refusal, which wrote nothing, is kept here once it is made. An answer of
 * 5xx is not kept: the request may not have run, and a retry should run it. A key that the spec
 * refuses (empty, too long) is left to the route's validation.
 */
export function idempotency(keys: IdempotencyKeys): MiddlewareHandler<AppEnv> {
  /** The keys of the requests running on this process (`instance\nkey`): a retry meanwhile is told to wait. */
  const running = new Set<string>()
  return async (c, next) => {
    const key = c.req.header('idempotency-key')
    if (c.req.method !== 'POST' || key === undefined || !IdempotencyKeyParamsSchema.safeParse(key).success)
      return next()
    const instanceId = c.get('instanceId')
    const held = `${instanceId}\n${key}`
    if (running.has(held)) throw errors.idempotencyKeyInUse()
    running.add(held)
    try {
      // The body is read once here; the route's validator reads it again from Hono's cache.
      const fingerprint = createHash('sha256')
        .update(`${c.req.method} ${c.req.path}\n`)
        .update(await c.req.text())
        .digest('hex')
      c.set('idempotencyKey', { instanceId, key, fingerprint })
      await next()
      if (c.res.status >= 400 && c.res.status < 500 && !answeredByTheKey(c.error)) {
        try {
          const kept = await keys.keepRefusal(
            { instanceId, key, fingerprint },
            c.res.status,
            await c.res.clone().text(),
          )
          // The key answered this request before, as it got here (a retry refused before its
          // write, the first one on another process): that answer is the one to send.
          if (kept?.refusal != null) c.res = respond(c, kept.refusal, kept.status)
        } catch (error) {
          if (!(error instanceof IdempotencyKeyReusedError)) throw error
          c.res = errorResponse(c, errors.idempotencyKeyReused())
        }
      }
    } finally {
      running.delete(held)
    }
  }
}

/** A refusal that comes from the key itself (kept before, in use, reused): not an answer to keep. */
const answeredByTheKey = (error: unknown) =>
  error instanceof RecordedRefusal ||
  error instanceof IdempotencyKeyInUseError ||
  error instanceof IdempotencyKeyReusedError

/** The request's Idempotency-Key as a write takes it, with the status its success answers with; undefined without one. */
export function claimOf(c: Context<AppEnv>, status: number): IdempotencyClaim | undefined {
  const key = c.get('idempotencyKey')
  return key && { ...key, status }
}

/** The header of a success sent again for its Idempotency-Key. */
export const replayed = (answered: { replayed: boolean }) =>
  answered.replayed ? { 'Idempotent-Replayed': 'true' } : undefined
