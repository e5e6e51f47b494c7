import { OpenAPIHono } from '@hono/zod-openapi'
import { registerRoutes, routes } from '@session-events/server-stubs'
import pino, { type Logger } from 'pino'
import { loadBuiltAsset } from './assets.js'
import { ASSET_PREFIX, loadWebPage, PAGE_CSP } from './web-page.js'
import type { AppEnv } from './env.js'
import { ApiError, errorResponse, errors } from './errors.js'
import { HTTPException } from 'hono/http-exception'
import { serverRunsHandlers } from './handlers/server-runs.handlers.js'
import { sessionEventsHandlers } from './handlers/session-events.handlers.js'
import { sessionsHandlers } from './handlers/sessions.handlers.js'
import { otlpHandlers } from './handlers/otlp.handlers.js'
import { OtlpIntake } from './otlp/intake.js'
import { otlpAnswers } from './otlp/answers.js'
import { authenticate, requireScope } from './middleware/auth.js'
import { bodySize } from './middleware/body-size.js'
import { idempotency } from './middleware/idempotency.js'
import { jsonBody } from './middleware/json-body.js'
import { indexedQuery } from './middleware/indexed-query.js'
import { rateLimit } from './middleware/rate-limit.js'
import { requestContext } from './middleware/request-context.js'
import { LoadShedder } from './middleware/shed-load.js'
import { StreamSlots } from './follow.js'
import { respond } from './respond.js'
import { defaultConfig, type Config } from './config.js'
import { CachingReader } from './cached-reader.js'
import { SerializingReader } from './json-reader.js'
import {
  IdempotencyKeyInUseError,
  IdempotencyKeyReusedError,
  InvalidReferenceError,
  RecordedRefusal,
  SessionGoneError,
  StoreUnavailableError,
  WriteConflictError,
  type Store,
} from './store/types.js'

// The app: the generated routes with their handlers, behind the middleware every request goes
// through, in this order: request context → indexed query keys → authentication → rate limit →
// scope (reads need sessions:read, writes sessions:write) → for writes, the body limit, what a
// body's schema cannot say (json-body.ts) and the Idempotency-Key. Whatever any of them throws becomes the API's error shape in onError.

export interface AppOptions {
  store: Store
  /**
   * The settings (config.ts): the rate limit, the read cache, the cap on streams, load shedding,
   * the log level. loadConfig()'s, or only those to set: the rest are their defaults.
   */
  config?: Partial<Config>
  /** Where the access log and errors go. Default: pino at the config's `logLevel`. */
  logger?: Logger
  /**
   * Makes the limiter of the config's rate limit (rate-limiter-flexible's: Redis…, to keep the
   * count out of the events database). Default: the store's (PostgreSQL's, which every process
   * over it shares), else one in this process's memory.
   */
  rateLimiter?: NonNullable<Store['rateLimiter']>
  /** Aborted when the server shuts down: open streams end cleanly, so that clients reconnect elsewhere. */
  shutdown?: AbortSignal
  /** The HTML of the API reference, served at /docs. Default: the one `npm run docs` built. */
  docsHtml?: string
  /** The spec as JSON, served at /openapi.json. Default: the bundle of openapi/session-events.yaml. */
  specJson?: string
  /** The built page that watches a session (apps/web/dist), served at `/`. Default: the one `npm run build` built. */
  webDir?: string
}

/** A template path of the spec (`/sessions/{sessionId}/events`) as a pattern for one request path. */
const routePatterns = Object.values(routes).map((route) => ({
  method: route.method.toUpperCase(),
  pattern: new RegExp(`^${route.path.replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
}))

export function createApp(options: AppOptions) {
  const { store } = options
  const config = defaultConfig(options.config)
  const logger = options.logger ?? pino({ level: config.logLevel })
  const limit = config.rateLimit
  // The store's reads as the bytes the API sends, kept by the one cache unless it has no memory.
  const serializing = new SerializingReader(store.reader)
  const reader = config.cacheBytes > 0 ? new CachingReader(serializing, config) : serializing

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

  app.use(requestContext(logger))
  const shedder =
    config.shedLoadAfterMs === false
      ? undefined
      : new LoadShedder({
          maxEventLoopDelayMs: config.shedLoadAfterMs,
          connectionWaitMs: store.connectionWaitMs,
          maxInFlight: config.shedLoadInFlight === false ? undefined : config.shedLoadInFlight,
        })
  if (shedder) {
    options.shutdown?.addEventListener('abort', () => shedder.stop(), { once: true })
    app.use('/sessions/*', shedder.middleware())
  }
  // `/sessions/*` matches `/sessions` too.
  app.use('/sessions/*', indexedQuery)
  app.use('/sessions/*', authenticate(reader))
  // One limiter for the API and OTLP: the key's requests count against one limit.
  const limited = limit && rateLimit({ limiter: (options.rateLimiter ?? store.rateLimiter)?.(limit), ...limit })
  if (limited) app.use('/sessions/*', limited)
  app.on('GET', '/sessions/*', requireScope('sessions:read'))
  app.on('POST', '/sessions/*', requireScope('sessions:write'))
  app.on('POST', '/sessions/*', bodySize)
  app.on('POST', '/sessions/*', jsonBody)
  app.on('POST', '/sessions/*', idempotency(store.idempotencyKeys))

  // OTLP/HTTP (`POST /v1/logs`, otlp/): the same key, rate limit and load shedding as the API,
  // every refusal a google.rpc.Status (otlpAnswers); its handler reads the body itself.
  app.use('/v1/*', otlpAnswers)
  if (shedder) app.use('/v1/*', shedder.middleware())
  app.use('/v1/*', authenticate(reader))
  if (limited) app.use('/v1/*', limited)
  app.on('POST', '/v1/*', requireScope('sessions:write'))

  registerRoutes(app, {
    ...sessionsHandlers(reader, store.writer),
    ...otlpHandlers(new OtlpIntake({ reader: store.reader, writer: store.writer })),
    ...serverRunsHandlers(reader, store.writer),
    ...sessionEventsHandlers({
      reader,
      writer: store.writer,
      feed: store.feed,
      streams: store.streamSlots?.(config.streamsPerKey) ?? new StreamSlots(config.streamsPerKey),
      shutdown: options.shutdown,
    }),
  })

  // Operations: not part of the API spec.
  app.get('/healthz', (c) => respond(c, JSON.stringify({ status: 'ok' }), 200))
  app.get('/readyz', async (c) => {
    // Not ready for more while it sheds load; alive all the same (/healthz).
    const overloaded = shedder?.overloaded
    if (overloaded)
      return respond(c, JSON.stringify({ status: 'overloaded', reason: overloaded, store: store.dialect }), 503, {
        'Retry-After': '1',
      })
    try {
      await store.ping()
      return respond(c, JSON.stringify({ status: 'ready', store: store.dialect }), 200)
    } catch (error) {
      logger.warn({ req_id: c.get('requestId'), err: error }, 'readiness check failed')
      return respond(c, JSON.stringify({ status: 'unavailable', store: store.dialect }), 503)
    }
  })
  const specJson = options.specJson ?? loadBuiltAsset('session-events.json')
  const docsHtml = options.docsHtml ?? loadBuiltAsset('docs.html')
  app.get('/openapi.json', (c) =>
    specJson
      ? respond(c, specJson, 200)
      : respond(c, 'The spec bundle is not built: run `npm run build`.', 404, {
          'content-type': 'text/plain; charset=UTF-8',
        }),
  )
  app.get('/docs', (c) =>
    docsHtml
      ? respond(c, docsHtml, 200, { 'content-type': 'text/html; charset=UTF-8' })
      : respond(c, 'The API reference is not built: run `npm run docs`.', 404, {
          'content-type': 'text/plain; charset=UTF-8',
        }),
  )

  // The page that watches a session (apps/web, web-page.ts): `/` and its assets under one
  // prefix, nothing else, so that every other path still answers the API's 404.
  const webPage = loadWebPage(options.webDir)
  app.get('/', (c) =>
    webPage
      ? respond(c, webPage.indexHtml, 200, {
          'content-type': 'text/html; charset=UTF-8',
          'content-security-policy': PAGE_CSP,
          'cache-control': 'no-cache',
          'referrer-policy': 'no-referrer',
        })
      : respond(c, 'The page is not built: run `npm run build`.', 404, {
          'content-type': 'text/plain; charset=UTF-8',
        }),
  )
  app.get(`${ASSET_PREFIX}*`, (c) => {
    const asset = webPage?.assets.get(c.req.path)
    if (!asset) return c.notFound()
    // Their names carry a hash of their content: a new build makes new names.
    return respond(c, asset.body, 200, {
      'content-type': asset.type,
      'cache-control': 'public, max-age=31536000, immutable',
    })
  })

  app.notFound((c) => {
    const allowed = routePatterns.filter((r) => r.pattern.test(c.req.path)).map((r) => r.method)
    const error =
      allowed.length > 0
        ? errors.methodNotAllowed(c.req.method, [...new Set(allowed)])
        : errors.endpointNotFound(c.req.method, c.req.path)
    return errorResponse(c, error)
  })

  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error)
    if (error instanceof InvalidReferenceError) {
      return errorResponse(
        c,
        errors.invalidData([{ code: 'invalid_reference', message: error.message, path: error.path }]),
      )
    }
    if (error instanceof WriteConflictError) return errorResponse(c, errors.conflict(error.message))
    if (error instanceof SessionGoneError) return errorResponse(c, errors.sessionNotFound())
    // The Idempotency-Key's own answers (middleware/idempotency.ts): the refusal its first request
    // got, as it was sent; another request with it; one writing with it right now.
    if (error instanceof RecordedRefusal) return respond(c, error.body, error.status)
    if (error instanceof IdempotencyKeyReusedError) return errorResponse(c, errors.idempotencyKeyReused())
    if (error instanceof IdempotencyKeyInUseError) return errorResponse(c, errors.idempotencyKeyInUse())
    // What @hono/zod-openapi refuses before the body's schema is applied.
    if (error instanceof HTTPException && error.status === 400)
      return errorResponse(c, errors.badRequest('The request body is not valid JSON.'))
    if (error instanceof HTTPException && error.status === 415) {
      return errorResponse(
        c,
        errors.badRequest('The request body must be JSON.', 'Send it with `Content-Type: application/json`.'),
      )
    }
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
