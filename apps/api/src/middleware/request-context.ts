import type { MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import type { AppEnv } from '../env.js'
import { IdSource } from '../ids.js'

/** Every request: an id of its own (respond.ts sends it back), and a log line when it is answered. */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  const ids = new IdSource()
  return async (c, next) => {
    const started = performance.now()
    const requestId = ids.newId('request')
    c.set('requestId', requestId)
    await next()
    if (logger.isLevelEnabled('info')) {
      logger.info({
        req_id: requestId,
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
      })
    }
  }
}
