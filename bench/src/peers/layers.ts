import { serve } from '@hono/node-server'
import { OpenAPIHono } from '@hono/zod-openapi'
import { defaultConfig, loadConfig, openStore } from '@session-events/api'
import type { AppEnv } from '@session-events/api/internal/env.js'
import { authenticate, requireScope } from '@session-events/api/internal/middleware/auth.js'
import { requestContext } from '@session-events/api/internal/middleware/request-context.js'
import { respond } from '@session-events/api/internal/respond.js'
import { CachingReader } from '@session-events/api/internal/cached-reader.js'
import { SerializingReader } from '@session-events/api/internal/json-reader.js'
import { registerRoutes, type SessionEventsHandlers } from '@session-events/server-stubs'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import pino from 'pino'
import { readFileSync } from 'node:fs'
import { peerArgs } from './fixtures.js'

// A diagnostic, not a peer: the API's stack built up one layer at a time, every layer answering
// with the fixtures' precomputed bytes, so that the cost of a request splits by layer.
//   hono    a bare Hono app on @hono/node-server, one route
//   routes  the generated routes (@hono/zod-openapi) and their validators
//   log     + the API's request context: request id, headers, access log (LOG_LEVEL, as the API reads it),
//           and from here on the bytes are sent as the API sends them, its headers in place
//   auth    + authentication and the scope check, against the store
//   body    + the body limit on writes (hono/body-limit, as the API mounts it)
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
/** The largest body the API takes (app.ts, MAX_BODY_BYTES). */
const MAX_BODY_BYTES = 5 * 1024 * 1024

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
    const store = await openStore(process.env.DATABASE_URL)
    routes.use(requestContext(pino({ level: loadConfig().logLevel })))
    if (layer === 'auth' || layer === 'body') {
      routes.use('/sessions/*', authenticate(new CachingReader(new SerializingReader(store.reader), defaultConfig())))
      routes.on('GET', '/sessions/*', requireScope('sessions:read'))
      routes.on('POST', '/sessions/*', requireScope('sessions:write'))
    }
    if (layer === 'body') routes.on('POST', '/sessions/*', bodyLimit({ maxSize: MAX_BODY_BYTES }))
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
