import type { MiddlewareHandler } from 'hono'
import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'

export interface RateLimitOptions {
  /** Requests a key may make in one window. */
  points: number
  /** The window, in seconds. */
  durationSeconds: number
  /** A shared limiter (Redis, PostgreSQL…) when several processes serve one API; in memory otherwise. */
  limiter?: RateLimiterAbstract
}

/**
 * A rate limit per API key, so that one tenant cannot starve another. Successful responses
 * carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (respond.ts puts them in);
 * over the limit, a 429 adds Retry-After.
 */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler<AppEnv> {
  const limiter =
    options.limiter ?? new RateLimiterMemory({ points: options.points, duration: options.durationSeconds })
  const limit = String(options.points)
  return async (c, next) => {
    let result: RateLimiterRes
    try {
      result = await limiter.consume(c.get('apiKeyId'))
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection
      const reset = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000))
      throw errors.tooManyRequests(reset, {
        'RateLimit-Limit': limit,
        'RateLimit-Remaining': '0',
        'RateLimit-Reset': String(reset),
      })
    }
    c.set('rateLimitHeaders', {
      'RateLimit-Limit': limit,
      'RateLimit-Remaining': String(result.remainingPoints),
      'RateLimit-Reset': String(Math.max(0, Math.ceil(result.msBeforeNext / 1000))),
    })
    await next()
  }
}
