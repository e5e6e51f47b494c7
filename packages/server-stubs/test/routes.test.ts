import { OpenAPIHono } from '@hono/zod-openapi'
import { loadSpec } from '@session-events/openapi'
import { describe, expect, it } from 'vitest'
import {
  ActiveServerRunExample,
  AppendedServerLogsEventExample,
  CompletedServerRunExample,
  registerRoutes,
  routes,
  type ServerRun,
  type Session,
  type SessionEvent,
  SessionExample,
  type SessionEventsHandlers,
} from '../src/index.js'

const spec = loadSpec()

// Handlers that echo what the generated routes validated, to see the routes work on a real app.
// The writes answer with the spec's examples and put what they were given in an `x-echo` header.
const echoed = (c: { header: (name: string, value: string) => void }, value: unknown) =>
  c.header('x-echo', JSON.stringify(value))
const echo: SessionEventsHandlers = {
  listSessions: (c) =>
    c.json(
      {
        __typename: 'list',
        items: [],
        pagination: {
          has_more_before: false,
          has_more_after: false,
          next_cursor: JSON.stringify(c.req.valid('query')),
          previous_cursor: null,
        },
      },
      200,
    ),
  createSession: (c) => {
    echoed(c, { body: c.req.valid('json'), key: c.req.valid('header')['Idempotency-Key'] ?? null })
    return c.json(SessionExample.value as Session, 201)
  },
  startServerRun: (c) => {
    echoed(c, { body: c.req.valid('json'), key: c.req.valid('header')['Idempotency-Key'] ?? null })
    return c.json(ActiveServerRunExample.value as ServerRun, 201)
  },
  getServerRun: (c) => {
    echoed(c, c.req.valid('param'))
    return c.json(ActiveServerRunExample.value as ServerRun, 200)
  },
  stopServerRun: (c) => {
    echoed(c, { body: c.req.valid('json'), param: c.req.valid('param') })
    return c.json(CompletedServerRunExample.value as ServerRun, 200)
  },
  listSessionEvents: (c) =>
    c.json(
      {
        __typename: 'list',
        items: [],
        pagination: {
          has_more_before: false,
          has_more_after: false,
          next_cursor: JSON.stringify(c.req.valid('query')),
          previous_cursor: null,
        },
      },
      200,
    ),
  // Its body is the handler's to read (`x-read-by-handler`): the route validates none of it.
  exportLogs: async (c) => {
    echoed(c, { bytes: (await c.req.arrayBuffer()).byteLength })
    return c.json({}, 200)
  },
  createSessionEvent: (c) => {
    echoed(c, { lines: c.req.valid('json').log_lines.length, run: c.req.valid('json').server_run_id })
    return c.json(AppendedServerLogsEventExample.value as SessionEvent, 201)
  },
  getSessionEvent: (c) =>
    c.json(
      { __typename: 'error', ok: false, status: 404, code: 'not_found', message: c.req.valid('param').sessionEventId },
      404,
    ),
  streamSessionEvents: (c) => {
    echoed(c, { query: c.req.valid('query'), lastEventId: c.req.valid('header')['Last-Event-ID'] ?? null })
    return c.body('retry: 2000\n\n', 200, { 'content-type': 'text/event-stream' })
  },
}

function appWithRoutes() {
  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) return c.json({ issues: result.error.issues.map((i) => i.path.join('.')) }, 400)
    },
  })
  return registerRoutes(app, echo)
}

const pathParams = (path: string) => path.replace(/\{(\w+)\}/g, ':$1')
const SES = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'
const SEV = 'sev_0m5q3k2x1Tz8KqPw3vXyA9'
const SRR = 'srr_0m5q3k1f8Ab3Cd4Ef5Gh6I'

/** A POST with a JSON body (or none), as a client sends it. */
function post(app: OpenAPIHono, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
}
const echoOf = (response: Response) => JSON.parse(response.headers.get('x-echo') ?? 'null')
const issuesOf = async (response: Response) => ((await response.json()) as { issues: string[] }).issues

describe('the generated routes', () => {
  it('cover every operation of the spec, keyed by operationId', () => {
    const specOps = Object.values<any>(spec.paths).flatMap((item) =>
      Object.values<any>(item).map((op): string => op.operationId),
    )
    expect(Object.keys(routes).sort()).toEqual(specOps.sort())
    for (const [path, item] of Object.entries<any>(spec.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        const route = routes[op.operationId as keyof typeof routes]
        expect([route.method, route.path]).toEqual([method, path])
      }
    }
  })

  it('leave a body marked x-read-by-handler to its handler: OTLP bodies, not JSON or of no declared type, reach exportLogs', async () => {
    const app = appWithRoutes()
    for (const [type, body] of [
      ['application/json', 'not json at all'],
      ['application/x-protobuf', new Uint8Array([0x0a, 0xff])],
      ['text/plain', 'neither'],
    ] as const) {
      const res = await app.request('/v1/logs', { method: 'POST', headers: { 'content-type': type }, body })
      expect([type, res.status]).toEqual([type, 200])
      expect(JSON.parse(res.headers.get('x-echo')!).bytes).toBeGreaterThan(0)
    }
  })

  it('register on an OpenAPIHono app whose document matches the source spec', () => {
    const doc = appWithRoutes().getOpenAPI31Document({ openapi: '3.1.0', info: spec.info })
    const deref = (d: any, node: any) =>
      node?.$ref
        ? node.$ref
            .split('/')
            .slice(1)
            .reduce((n: any, k: string) => n[k], d)
        : node
    const shape = (d: any) =>
      Object.entries<any>(d.paths).flatMap(([path, item]) =>
        Object.entries<any>(item).map(([method, op]) => ({
          path,
          method,
          operationId: op.operationId,
          parameters: (op.parameters ?? [])
            .map((p: any) => deref(d, p))
            .map((p: any) => `${p.in}:${p.name}:${p.required ? 'required' : 'optional'}`)
            .sort(),
          requestBody: op.requestBody
            ? {
                required: op.requestBody.required === true,
                content: Object.fromEntries(
                  Object.entries<any>(op.requestBody.content).map(([media, m]) => [media, m.schema.$ref]),
                ),
              }
            : null,
          responses: Object.fromEntries(
            Object.entries<any>(op.responses).map(([status, r]) => {
              const response = deref(d, r)
              // Names only: zod-to-openapi marks every `.exactOptional()` response header required.
              return [
                status,
                Object.keys(response.headers ?? {})
                  .map((name) => name.toLowerCase())
                  .sort(),
              ]
            }),
          ),
        })),
      )
    expect(shape(doc)).toEqual(shape(spec))
    expect(Object.keys(doc.components?.schemas ?? {}).sort()).toEqual(Object.keys(spec.components.schemas).sort())
  })

  it('validate path and query parameters as the spec says', async () => {
    const app = appWithRoutes()
    const list = (query: string) => app.request(`${pathParams(`/sessions/${SES}/events`)}${query}`)

    const ok = await list(`?limit=5&order=desc&server_run_id=${SRR}&type=server_logs&unknown=1`)
    expect(ok.status).toBe(200)
    expect(JSON.parse(((await ok.json()) as any).pagination.next_cursor)).toEqual({
      limit: 5,
      order: 'desc',
      server_run_id: [SRR],
      type: ['server_logs'],
    })
    const twice = await list(`?server_run_id=${SRR}&server_run_id=${SRR}`)
    expect(JSON.parse(((await twice.json()) as any).pagination.next_cursor).server_run_id).toEqual([SRR, SRR])

    expect((await list('?limit=0')).status).toBe(400)
    expect((await list('?limit=101')).status).toBe(400)
    expect(await (await list('?limit=x&order=up&type=nope')).json()).toEqual({ issues: ['limit', 'order', 'type.0'] })
    expect((await app.request('/sessions/not-an-id/events')).status).toBe(400)
    expect((await app.request(`/sessions/${SES}/events/${SEV}`)).status).toBe(404)
    expect((await app.request(`/sessions/${SES}/events/sev_bad`)).status).toBe(400)

    const run = await app.request(`/sessions/${SES}/server-runs/${SRR}`)
    expect([run.status, echoOf(run)]).toEqual([200, { sessionId: SES, serverRunId: SRR }])

    // The sessions: newest first, so no `order`; statuses like the events' filters.
    const sessions = await app.request(`/sessions?limit=3&status=active&status=deleted&after=${SES}`)
    expect(sessions.status).toBe(200)
    expect(JSON.parse(((await sessions.json()) as any).pagination.next_cursor)).toEqual({
      limit: 3,
      status: ['active', 'deleted'],
      after: SES,
    })
    expect(await (await app.request('/sessions?limit=0&status=gone&before=sev_x')).json()).toEqual({
      issues: ['limit', 'before', 'status.0'],
    })
    expect((await app.request(`/sessions/${SES}/server-runs/srr_bad`)).status).toBe(400)
  })
})

describe('the route of the live tail', () => {
  it('is matched before getSessionEvent: `stream` is never taken for an event id', async () => {
    const res = await appWithRoutes().request(`/sessions/${SES}/events/stream?tail=5`, {
      headers: { 'Last-Event-ID': SEV },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    expect(JSON.parse(res.headers.get('x-echo')!)).toEqual({ query: { tail: 5 }, lastEventId: SEV })
    expect((await appWithRoutes().request(`/sessions/${SES}/events/stream?tail=101`)).status).toBe(400)
  })
})

describe('the generated routes of the writes', () => {
  const app = appWithRoutes()
  const runs = `/sessions/${SES}/server-runs`

  it('take a bare POST /sessions (the body is optional) and validate a body that is sent', async () => {
    const bare = await post(app, '/sessions')
    expect([bare.status, echoOf(bare)]).toEqual([201, { body: {}, key: null }])
    const withMetadata = await post(app, '/sessions', { metadata: { user: 'ada' } })
    expect([withMetadata.status, echoOf(withMetadata).body]).toEqual([201, { metadata: { user: 'ada' } }])
    expect(await issuesOf(await post(app, '/sessions', { metadata: 5 }))).toEqual(['metadata'])
  })

  it('validate the Idempotency-Key header: 1 to 255 characters, under any casing', async () => {
    const key = 'k'.repeat(255)
    expect(echoOf(await post(app, '/sessions', undefined, { 'idempotency-key': key })).key).toBe(key)
    expect(echoOf(await post(app, '/sessions', {}, { 'Idempotency-Key': 'abc' })).key).toBe('abc')
    expect(await issuesOf(await post(app, '/sessions', undefined, { 'Idempotency-Key': `${key}k` }))).toEqual([
      'Idempotency-Key',
    ])
    expect(await issuesOf(await post(app, '/sessions', undefined, { 'Idempotency-Key': '' }))).toEqual([
      'Idempotency-Key',
    ])
  })

  it('validate the body of startServerRun, filling in the defaults', async () => {
    const started = await post(app, runs, { type: 'external', server: { name: 'GitHub' } }, { 'Idempotency-Key': 'k1' })
    expect(started.status).toBe(201)
    expect(echoOf(started)).toEqual({
      body: { type: 'external', server: { name: 'GitHub', type: 'custom' } },
      key: 'k1',
    })
    const every = {
      type: 'hosted',
      server: { id: 'srv_0m2b7c8a1Uv1Wx2Yz3Ab4C' },
      server_deployment: { name: null, description: null, metadata: { a: 1 } },
      server_version_id: 'sve_0m2b7c9d0Kl7Mn8Op9Qr0S',
      server_session: {
        mcp: { version: '2025-03-26', connection_type: 'sse', client: { name: 'c', version: '1' }, server: null },
      },
    }
    expect(echoOf(await post(app, runs, every)).body).toEqual({ ...every, server: { ...every.server, type: 'custom' } })

    expect(await issuesOf(await post(app, runs))).toEqual(['type', 'server'])
    expect(await issuesOf(await post(app, runs, { type: 'local', server: { id: 'srv_bad' } }))).toEqual([
      'type',
      'server.id',
    ])
    expect(
      await issuesOf(
        await post(app, runs, { type: 'hosted', server: { name: 'x'.repeat(201), description: 'y'.repeat(2001) } }),
      ),
    ).toEqual(['server.name', 'server.description'])
    expect(
      await issuesOf(
        await post(app, runs, {
          type: 'hosted',
          server: { name: 'x' },
          server_session: { id: 'srs_bad', mcp: { version: '1', connection_type: 'pipe' } },
        }),
      ),
    ).toEqual(['server_session.id', 'server_session.mcp.connection_type'])
    expect((await post(app, `/sessions/ses_bad/server-runs`, { type: 'hosted', server: { name: 'x' } })).status).toBe(
      400,
    )
  })

  it('validate the body of createSessionEvent: 1 to 1,000 lines of at most 65,536 characters', async () => {
    const events = `/sessions/${SES}/events`
    const lines = (n: number, line = 'x') => Array.from({ length: n }, () => ({ type: 'stdout', line }))
    const appended = await post(app, events, { server_run_id: SRR, log_lines: lines(1000) })
    expect([appended.status, echoOf(appended)]).toEqual([201, { lines: 1000, run: SRR }])
    expect((await post(app, events, { server_run_id: SRR, log_lines: lines(1, 'x'.repeat(65_536)) })).status).toBe(201)

    expect(await issuesOf(await post(app, events, { server_run_id: SRR, log_lines: lines(1001) }))).toEqual([
      'log_lines',
    ])
    expect(await issuesOf(await post(app, events, { server_run_id: SRR, log_lines: [] }))).toEqual(['log_lines'])
    expect(
      await issuesOf(await post(app, events, { server_run_id: SRR, log_lines: lines(1, 'x'.repeat(65_537)) })),
    ).toEqual(['log_lines.0.line'])
    expect(
      await issuesOf(await post(app, events, { server_run_id: 'srr_bad', log_lines: [{ type: 'stdin', line: 'x' }] })),
    ).toEqual(['server_run_id', 'log_lines.0.type'])
  })

  it('validate the body of stopServerRun', async () => {
    const stop = `${runs}/${SRR}/stop`
    const failed = {
      status: 'failed',
      error: { code: 'process_exited', message: 'Exited with 1.', metadata: { exit_code: 1 } },
    }
    const stopped = await post(app, stop, failed)
    expect([stopped.status, echoOf(stopped)]).toEqual([
      200,
      { body: failed, param: { sessionId: SES, serverRunId: SRR } },
    ])
    expect(await issuesOf(await post(app, stop, { status: 'done' }))).toEqual(['status'])
    expect(await issuesOf(await post(app, stop, { status: 'failed', error: { code: '' } }))).toEqual([
      'error.code',
      'error.message',
    ])
  })

  it('leave the non-JSON bodies to the app: malformed JSON and other media types are HTTPExceptions', async () => {
    // @hono/zod-openapi throws these before the defaultHook runs; the app's error handler
    // turns them into the API's error shape.
    const malformed = await app.request(runs, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"type":',
    })
    expect(malformed.status).toBe(400)
    const text = await app.request(runs, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })
    expect(text.status).toBe(415)
    const untyped = await app.request(runs, { method: 'POST', body: '{}' })
    expect(untyped.status).toBe(415)
  })
})

// The handler map is typed by the routes: these lines are compile errors, checked by `npm run typecheck`.
// @ts-expect-error a handler is missing
export const missing: SessionEventsHandlers = { listSessionEvents: echo.listSessionEvents }
export const wrongStatus: SessionEventsHandlers = {
  ...echo,
  // @ts-expect-error 418 is not a status the spec declares for getSessionEvent
  getSessionEvent: (c) => c.json({ __typename: 'error', ok: false, status: 418, code: 'not_found', message: 'x' }, 418),
}
export const wrongBody: SessionEventsHandlers = {
  ...echo,
  // @ts-expect-error the body of a 200 must be a SessionEvent
  getSessionEvent: (c) => c.json({ id: 1 }, 200),
}
export const wrongWriteStatus: SessionEventsHandlers = {
  ...echo,
  // @ts-expect-error startServerRun answers 201, not 200
  startServerRun: (c) => c.json(ActiveServerRunExample.value as ServerRun, 200),
}
export const wrongWriteBody: SessionEventsHandlers = {
  ...echo,
  // @ts-expect-error the body of createSessionEvent's 201 is a SessionEvent, not a ServerRun
  createSessionEvent: (c) => c.json(ActiveServerRunExample.value as ServerRun, 201),
}
export const newErrorCodes: SessionEventsHandlers = {
  ...echo,
  stopServerRun: (c) =>
    c.json(
      { __typename: 'error', ok: false, status: 409, code: 'conflict', message: 'The server run has stopped.' },
      409,
    ),
}
export const typedBody: SessionEventsHandlers = {
  ...echo,
  createSessionEvent: (c) => {
    // @ts-expect-error the validated body has no such field
    const _lines = c.req.valid('json').lines
    return echo.createSessionEvent(c, async () => {})
  },
}
