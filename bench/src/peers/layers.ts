import { serve } from '@hono/node-server'
import { OpenAPIHono } from '@hono/zod-openapi'
import { loadConfig, openStore } from '@session-events/api'
import type { AppEnv } from '@session-events/api/internal/env.js'
import { authenticate, requireScope } from '@session-events/api/internal/middleware/auth.js'
import { bodySize } from '@session-events/api/internal/middleware/body-size.js'
import { idempotency } from '@session-events/api/internal/middleware/idempotency.js'
import { indexedQuery } from '@session-events/api/internal/middleware/indexed-query.js'
import { jsonBody } from '@session-events/api/internal/middleware/json-body.js'
import { requestContext } from '@session-events/api/internal/middleware/request-context.js'
import { LoadShedder } from '@session-events/api/internal/middleware/shed-load.js'
import { respond } from '@session-events/api/internal/respond.js'
import { CachingReader } from '@session-events/api/internal/cached-reader.js'
import { SerializingReader } from '@session-events/api/internal/json-reader.js'
import { registerRoutes, type SessionEventsHandlers } from '@session-events/server-stubs'
import { Hono, type Context } from 'hono'
import pino from 'pino'
import { readFileSync } from 'node:fs'
import { peerArgs } from './fixtures.js'

// A diagnostic, not a peer: the API's stack built up one layer at a time, every layer answering
// with the fixtures' precomputed bytes, so that the cost of a request splits by layer. Each layer
// is the API's own middleware (apps/api/src/middleware/), made and mounted as createApp does
// (app.ts), in its order, with the settings the API reads (loadConfig()).
//   hono    a bare Hono app on @hono/node-server, one route
//   routes  the generated routes (@hono/zod-openapi) and their validators
//   log     + the API's request context: request id, headers, access log (LOG_LEVEL, as the API reads it),
//           and from here on the bytes are sent as the API sends them, its headers in place
//   auth    + load shedding (SHED_LOAD_AFTER_MS, SHED_LOAD_IN_FLIGHT), the indexed query keys,
//           authentication and the scope check, against the store (the rate limit is off, as
//           the benchmark runs the API)
//   body    + what a write's body goes through before its route: its Content-Length against the
//           largest body, what its schema cannot say (json-body.ts: nesting, `__proto__` keys)
//           and the Idempotency-Key middleware (the requests here send none)
// Appends (POST /sessions/{id}/events) are answered too when WRITE_ANSWERS is given (the write
// suite's: the API's 201 bytes by lines a request), each layer reading the body as the API would
// at that layer: `hono` parses it as JSON, `routes` and above let the generated validator do it.
// Usage: DATABASE_URL=sqlite:… node layers.js FIXTURES PORT LAYER [WRITE_ANSWERS]

export const LAYERS = ['hono', 'routes', 'log', 'auth', 'body'] as const
export type Layer = (typeof LAYERS)[number]

const { fixtures, port } = peerArgs()
const layer = process.argv[4] as Layer
if (!LAYERS.includes(layer)) throw new Error(`layer must be one of ${LAYERS.join(', ')} (got ${layer})`)
const answers = new Map(fixtures.map((f) => [f.path, Buffer.from(f.body)]))
const answer = (c: Context) =>
  new Response(answers.get(c.req.path) ?? null, { headers: { 'content-type': 'application/json' } })
const answerAsTheApi = (c: Context<AppEnv>) => respond(c, answers.get(c.req.path) ?? '', 200)
const writeAnswersFile = process.argv[5]
const writeAnswers = new Map(
  writeAnswersFile
    ? Object.entries(JSON.parse(readFileSync(writeAnswersFile, 'utf8')) as Record<string, string>).map(
        ([lines, body]) => [Number(lines), Buffer.from(body)],
      )
    : [],
)
/** The 201 of an append of `lines` lines, bare or as the API sends it. */
const appended = (c: Context<AppEnv>, lines: number, asTheApi: boolean) =>
  asTheApi
    ? respond(c, writeAnswers.get(lines) ?? '', 201)
    : new Response(writeAnswers.get(lines) ?? null, { status: 201, headers: { 'content-type': 'application/json' } })

let app: { fetch: (request: Request) => Response | Promise<Response> }
if (layer === 'hono') {
  const hono = new Hono()
  hono.get('/sessions/:sessionId/events/:sessionEventId', answer)
  hono.get('/sessions/:sessionId/events', answer)
  hono.post('/sessions/:sessionId/events', async (c) =>
    appended(
      c as unknown as Context<AppEnv>,
      ((await c.req.json()) as { log_lines: unknown[] }).log_lines.length,
      false,
    ),
  )
  app = hono
} else {
  const routes = new OpenAPIHono<AppEnv>({ strict: false })
  if (layer === 'log' || layer === 'auth' || layer === 'body') {
    const config = loadConfig()
    const store = await openStore(config.databaseUrl, config)
    routes.use(requestContext(pino({ level: config.logLevel })))
    if (layer === 'auth' || layer === 'body') {
      if (config.shedLoadAfterMs !== false) {
        const shedder = new LoadShedder({
          maxEventLoopDelayMs: config.shedLoadAfterMs,
          connectionWaitMs: store.connectionWaitMs,
          maxInFlight: config.shedLoadInFlight === false ? undefined : config.shedLoadInFlight,
        })
        routes.use('/sessions/*', shedder.middleware())
      }
      routes.use('/sessions/*', indexedQuery)
      const reader = new SerializingReader(store.reader)
      routes.use('/sessions/*', authenticate(config.cacheBytes > 0 ? new CachingReader(reader, config) : reader))
      routes.on('GET', '/sessions/*', requireScope('sessions:read'))
      routes.on('POST', '/sessions/*', requireScope('sessions:write'))
    }
    if (layer === 'body') {
      routes.on('POST', '/sessions/*', bodySize)
      routes.on('POST', '/sessions/*', jsonBody)
      routes.on('POST', '/sessions/*', idempotency(store.idempotencyKeys))
    }
  }
  // The handlers read what the validators made, as the API's do, and answer the bytes.
  const send: (c: Context<AppEnv>) => Response = layer === 'routes' ? answer : answerAsTheApi
  const handlers = {
    listSessionEvents: (c: Context<AppEnv>) => (c.req.valid('param' as never), c.req.valid('query' as never), send(c)),
    getSessionEvent: (c: Context<AppEnv>) => (c.req.valid('param' as never), send(c)),
    // Not measured here: the writes answer like the reads, so that every route is there.
    createSession: send,
    startServerRun: send,
    getServerRun: send,
    stopServerRun: send,
    createSessionEvent: (c: Context<AppEnv>) =>
      appended(c, (c.req.valid('json' as never) as { log_lines: unknown[] }).log_lines.length, layer !== 'routes'),
  } as unknown as SessionEventsHandlers<AppEnv>
  registerRoutes(routes, handlers)
  app = routes
}
serve({ fetch: app.fetch, hostname: '127.0.0.1', port })
