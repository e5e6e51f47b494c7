import { OpenAPIHono } from '@hono/zod-openapi'
import { registerRoutes, routes } from '@session-events/server-stubs'
import type { MiddlewareHandler } from 'hono'
import pino, { type Logger } from 'pino'
import { loadBuiltAsset } from './assets.js'
import { authenticate, requireScope } from './auth.js'
import type { AppEnv } from './env.js'
import { ApiError, errorResponse, errors } from './errors.js'
import { hasApiHeaders } from './json.js'
import { createSessionEventsHandlers } from './handlers/session-events.handlers.js'
import { newId } from './ids.js'
import { rateLimit, type RateLimitOptions } from './rate-limit.js'
import { StoreUnavailableError, type Store } from './store/types.js'

export const API_VERSION = '2025-01-01'

export interface AppOptions {
  store: Store
  /** A rate limit per API key; `false` turns it off. Default: 1,200 requests a minute. */
  rateLimit?: false | RateLimitOptions
  logger?: Logger
  /** The HTML of the API reference, served at /docs. Default: the one `npm run docs` built. */
  docsHtml?: string
  /** The spec as JSON, served at /openapi.json. Default: the bundle of openapi/session-events.yaml. */
  specJson?: string
  /** How long an API key lookup is cached, in seconds (0: not at all). Default: 5. */
  keyCacheSeconds?: number
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { points: 1200, durationSeconds: 60 }

/** Metorial's SDK sends arrays as `key[0]=a&key[1]=b`: make them repeated keys before validation. */
const normaliseIndexedQuery: MiddlewareHandler<AppEnv> = async (c, next) => {
  const url = c.req.url
  const q = url.indexOf('?')
  if (q >= 0 && (url.includes('[', q) || url.includes('%5B', q) || url.includes('%5b', q))) {
    const params = new URLSearchParams(url.slice(q + 1))
    const indexed: [string, number, string][] = []
    const plain: [string, string][] = []
    for (const [key, value] of params) {
      const m = /^(.+)\[(\d*)\]$/.exec(key)
      if (m) indexed.push([m[1]!, m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]), value])
      else plain.push([key, value])
    }
    if (indexed.length > 0) {
      indexed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]))
      const out = new URLSearchParams(plain)
      for (const [key, , value] of indexed) out.append(key, value)
      c.req.raw = new Request(`${url.slice(0, q)}?${out.toString()}`, c.req.raw)
    }
  }
  await next()
}

/** Every response: a request id and the API version; a log line when it is done. */
export function requestContext(store: Store, logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now()
    const requestId = newId('request')
    c.set('requestId', requestId)
    c.set('store', store)
    c.set('logger', logger)
    c.set('responseHeaders', { 'metorial-req-id': requestId, 'metorial-version': API_VERSION })
    await next()
    if (!hasApiHeaders(c.res)) {
      c.res.headers.set('metorial-req-id', requestId)
      c.res.headers.set('metorial-version', API_VERSION)
    }
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

/** A template path of the spec (`/sessions/{sessionId}/events`) as a pattern for one request path. */
const routePatterns = Object.values(routes).map((route) => ({
  method: route.method.toUpperCase(),
  pattern: new RegExp(`^${route.path.replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
}))

export function createApp(options: AppOptions) {
  const { store } = options
  const logger = options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })
  const limit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit

  const app = new OpenAPIHono<AppEnv>({
    // `/sessions/x/events/` is `/sessions/x/events`.
    strict: false,
    // Every validation failure of a generated route becomes the API's own 400.
    defaultHook: (result) => {
      if (!result.success) {
        throw errors.invalidData(
          result.error.issues.map((issue) => ({
            code: issue.code,
            message: issue.message,
            path: issue.path.map((p) => (typeof p === 'number' ? p : String(p))),
          })),
        )
      }
    },
  })

  app.use(requestContext(store, logger))

  app.use('/sessions/*', normaliseIndexedQuery)
  app.use('/sessions/*', authenticate(store, { cacheSeconds: options.keyCacheSeconds ?? 5 }))
  if (limit) app.use('/sessions/*', rateLimit(limit))
  app.use('/sessions/*', requireScope())

  registerRoutes(app, createSessionEventsHandlers())

  // Operations: not part of the API spec.
  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', async (c) => {
    try {
      await store.ping()
      return c.json({ status: 'ready', store: store.dialect })
    } catch (error) {
      logger.warn({ req_id: c.get('requestId'), err: error }, 'readiness check failed')
      return c.json({ status: 'unavailable', store: store.dialect }, 503)
    }
  })
  const specJson = options.specJson ?? loadBuiltAsset('session-events.json')
  const docsHtml = options.docsHtml ?? loadBuiltAsset('docs.html')
  app.get('/openapi.json', (c) => {
    if (!specJson) return c.text('The spec bundle is not built: run `npm run build`.', 404)
    c.header('content-type', 'application/json')
    return c.body(specJson)
  })
  app.get('/docs', (c) => {
    if (!docsHtml) return c.text('The API reference is not built: run `npm run docs`.', 404)
    return c.html(docsHtml)
  })

  app.notFound((c) => {
    const allowed = routePatterns.filter((r) => r.pattern.test(c.req.path)).map((r) => r.method)
    const error =
      allowed.length > 0 ? errors.methodNotAllowed(c.req.method, allowed) : errors.endpointNotFound(c.req.method, c.req.path)
    return errorResponse(c, error)
  })

  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error)
    if (error instanceof StoreUnavailableError) {
      logger.warn({ req_id: c.get('requestId'), err: error.message }, 'store unavailable')
      return errorResponse(c, errors.unavailable())
    }
    logger.error({ req_id: c.get('requestId'), err: error }, 'unexpected error')
    return errorResponse(c, errors.internal())
  })

  return app
}

export type App = ReturnType<typeof createApp>
