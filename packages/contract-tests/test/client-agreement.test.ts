import { createSessionEventsClient, SessionEventsError, type components, type paths } from '@session-events/client'
import { serve, type RunningServer } from '@session-events/api'
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import { cursorOf, readCursor } from './support/cursor.js'
import { checkResponse, operation, operations, spec, type CheckedResponse } from './support/spec.js'
import { createWorld, eventIds, sessionRuns, type World } from './support/world.js'

// Client and server agree: the generated client (openapi-fetch on the generated `paths`, as
// @session-events/client builds it) drives the real server over HTTP through every operation,
// every parameter and the error statuses, and every response it gets conforms to the spec. And
// the OpenAPI document the app builds from its routes still matches the source spec.

type SessionEventList = components['schemas']['SessionEventList']
type SessionEvent = components['schemas']['SessionEvent']
type ApiError = components['schemas']['Error']

let world: World
let server: RunningServer
/** Every exchange the client made, as sent and as received (bodies unread). */
const exchanges: { request: Request; response: Response }[] = []

const recordingFetch = async (request: Request) => {
  const sent = request.clone()
  const response = await fetch(request)
  exchanges.push({ request: sent, response: response.clone() })
  return response
}

const client = () => createSessionEventsClient({ apiKey: world.a.secret_key, baseUrl: server.url, fetch: recordingFetch, maxRetries: 0 })

/** The last exchange, held to the spec for the operation that was called. */
async function lastChecked(operationId: string): Promise<CheckedResponse & { url: URL; request: Request }> {
  const { request, response } = exchanges.at(-1)!
  const checked = await checkResponse(operation(operationId), response)
  expect(checked.problems, `${operationId} ${request.url}`).toEqual([])
  return { ...checked, url: new URL(request.url), request }
}

let sessionId: string
let ids: string[]

beforeAll(async () => {
  world = await createWorld({ sessions: 2, events: 45 })
  server = await serve({ app: world.app, port: 0 })
  sessionId = world.a.sessions[0]!.id
  ids = await eventIds(world.store, sessionId)
})

afterAll(async () => {
  await server?.close()
  await world?.store.close()
})

describe('the generated client against the real server, over HTTP', () => {
  /** One typed call per operation of the spec, through openapi-fetch with the generated paths. */
  const drivers: Record<string, () => Promise<unknown>> = {
    listSessionEvents: async () => {
      const { data, error } = await client().raw.GET('/sessions/{sessionId}/events', { params: { path: { sessionId } } })
      expectTypeOf(data).toEqualTypeOf<SessionEventList | undefined>()
      // `branded`: the same type, written by openapi-fetch as a union of each error status's body.
      expectTypeOf(error).branded.toEqualTypeOf<ApiError | undefined>()
      return data
    },
    getSessionEvent: async () => {
      const { data, error } = await client().raw.GET('/sessions/{sessionId}/events/{sessionEventId}', {
        params: { path: { sessionId, sessionEventId: ids[0]! } },
      })
      expectTypeOf(data).toEqualTypeOf<SessionEvent | undefined>()
      // `branded`: the same type, written by openapi-fetch as a union of each error status's body.
      expectTypeOf(error).branded.toEqualTypeOf<ApiError | undefined>()
      return data
    },
  }

  it('has a typed call for every operation of the spec', () => {
    expect(Object.keys(drivers).sort()).toEqual(operations.map((op) => op.operationId).sort())
  })

  it.each(operations.map((op) => op.operationId))('%s: a 200 that conforms, read by the client as sent', async (operationId) => {
    const data = await drivers[operationId]!()
    const checked = await lastChecked(operationId)
    expect(checked.status).toBe(200)
    expect(data).toEqual(checked.body)
  })

  it('sends every query and header parameter of listSessionEvents as the server reads it', async () => {
    const runs = await sessionRuns(world.store, sessionId)
    const runIds = runs.slice(0, 2).map((r) => r.id)
    const serverSessionIds = [...new Set(runs.map((r) => r.server_session_id))]
    const raw = client().raw
    const path = '/sessions/{sessionId}/events' as const
    const sent = new Set<string>()
    const call = async (query: NonNullable<paths[typeof path]['get']['parameters']['query']>) => {
      const { data } = await raw.GET(path, { params: { path: { sessionId }, query } })
      const checked = await lastChecked('listSessionEvents')
      expect(checked.status, checked.text.slice(0, 300)).toBe(200)
      for (const name of checked.url.searchParams.keys()) sent.add(name)
      checked.request.headers.forEach((_, name) => sent.add(name.toLowerCase()))
      return data!
    }

    const filtered = await call({ limit: 100, order: 'desc', server_run_id: runIds, server_session_id: serverSessionIds, type: ['server_logs', 'server_run_error'] })
    expect(filtered.items.length).toBeGreaterThan(0)
    expect(filtered.items.every((e) => runIds.includes(e.server_run!.id))).toBe(true)
    expect(filtered.items.map((e) => e.id)).toEqual([...filtered.items.map((e) => e.id)].sort().reverse())

    const afterPage = await call({ limit: 3, after: ids[4]! })
    expect(afterPage.items.map((e) => e.id)).toEqual(ids.slice(5, 8))
    const beforePage = await call({ limit: 3, before: ids[4]! })
    expect(beforePage.items.map((e) => e.id)).toEqual(ids.slice(1, 4))
    const cursorPage = await call({ limit: 3, cursor: afterPage.pagination.next_cursor! })
    expect(cursorPage.items.map((e) => e.id)).toEqual(ids.slice(8, 11))

    const declared = operation('listSessionEvents').parameters.filter((p) => p.in === 'query' || p.in === 'header')
    expect(declared.map((p) => (p.in === 'header' ? p.name.toLowerCase() : p.name)).filter((name) => !sent.has(name))).toEqual([])
  })

  it('gets every error as the spec’s Error, typed, and the high-level client throws it', async () => {
    const raw = client().raw
    const missingSession = 'ses_000000000AAAAAAAAAAAAA'
    const cases = [
      { operationId: 'listSessionEvents', status: 404, call: () => raw.GET('/sessions/{sessionId}/events', { params: { path: { sessionId: missingSession } } }) },
      { operationId: 'listSessionEvents', status: 400, call: () => raw.GET('/sessions/{sessionId}/events', { params: { path: { sessionId }, query: { limit: 0 } } }) },
      {
        operationId: 'getSessionEvent',
        status: 404,
        call: () => raw.GET('/sessions/{sessionId}/events/{sessionEventId}', { params: { path: { sessionId, sessionEventId: 'sev_000000000AAAAAAAAAAAAA' } } }),
      },
    ]
    for (const { operationId, status, call } of cases) {
      const { data, error, response } = await call()
      expectTypeOf(error).branded.toEqualTypeOf<ApiError | undefined>()
      expect(data).toBeUndefined()
      expect(response.status).toBe(status)
      const checked = await lastChecked(operationId)
      expect(error).toEqual(checked.body)
    }
    expect(new Set(cases.map((c) => c.operationId))).toEqual(new Set(operations.map((op) => op.operationId)))
    const unauthorised = createSessionEventsClient({ apiKey: world.a.revoked_key, baseUrl: server.url, fetch: recordingFetch, maxRetries: 0 })
    const thrown = await unauthorised.sessionEvents.list(sessionId).catch((e: unknown) => e)
    expect(thrown).toBeInstanceOf(SessionEventsError)
    const checked = await lastChecked('listSessionEvents')
    const body = checked.body as ApiError
    expect(thrown).toMatchObject({ status: checked.status, code: body.code, message: body.message })
  })

  it.each(['asc', 'desc'] as const)('walks every event of a session with the client’s iterate(), order %s', async (order) => {
    const seen: string[] = []
    for await (const event of client().sessionEvents.iterate(sessionId, { order, limit: 7 })) seen.push(event.id)
    expect(seen).toEqual(order === 'asc' ? ids : [...ids].reverse())
  })

  it('speaks Metorial’s cursors: next and previous decode to the page’s edges, and a Metorial cursor works here', async () => {
    const eventIdPattern = new RegExp(spec.components.schemas.SessionEventId.pattern)
    const raw = client().raw
    const { data: page } = await raw.GET('/sessions/{sessionId}/events', { params: { path: { sessionId }, query: { limit: 5, after: ids[9]! } } })
    expect(readCursor(page!.pagination.next_cursor!, eventIdPattern)).toEqual({ direction: 'after', id: page!.items.at(-1)!.id })
    expect(readCursor(page!.pagination.previous_cursor!, eventIdPattern)).toEqual({ direction: 'before', id: page!.items[0]!.id })
    const { data: viaCursor } = await raw.GET('/sessions/{sessionId}/events', {
      params: { path: { sessionId }, query: { limit: 5, cursor: cursorOf(['after', ids[9]]) } },
    })
    expect(viaCursor).toEqual(page)
  })
})

describe('the app’s OpenAPI document and the source spec', () => {
  const doc = () => world.app.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 'x', version: '1' } }) as any

  /** An operation's shape in a document: parameters, statuses, headers and content per status. */
  function shapeOf(document: any, path: string, method: string) {
    const deref = (node: any): any => {
      while (node?.$ref) node = node.$ref.split('/').slice(1).reduce((n: any, k: string) => n[k.replace(/~1/g, '/').replace(/~0/g, '~')], document)
      return node
    }
    const op = document.paths[path][method]
    const parameters = (op.parameters ?? [])
      .map(deref)
      .map((p: any) => ({ name: p.name, in: p.in, required: p.required === true, style: p.style ?? null, explode: p.explode ?? null, schema: normalise(p.schema, deref) }))
      .sort((x: any, y: any) => `${x.in}${x.name}`.localeCompare(`${y.in}${y.name}`))
    const responses = Object.fromEntries(
      Object.entries(op.responses).map(([status, r]) => {
        const response = deref(r)
        return [
          status,
          {
            headers: Object.keys(response.headers ?? {}).map((h) => h.toLowerCase()).sort(),
            content: Object.fromEntries(Object.entries(response.content ?? {}).map(([media, m]: [string, any]) => [media, m.schema?.$ref ?? normalise(m.schema, deref)])),
          },
        ]
      }),
    )
    return { operationId: op.operationId, parameters, responses }
  }

  /** A schema with references inlined and the words for humans left out. */
  function normalise(schema: any, deref: (node: any) => any): any {
    schema = deref(schema)
    if (Array.isArray(schema)) return schema.map((s) => normalise(s, deref))
    if (!schema || typeof schema !== 'object') return schema
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(schema)) {
      if (['description', 'examples', 'example', 'title'].includes(key)) continue
      out[key] = normalise(value, deref)
    }
    // `const: x` and `enum: [x]` say the same.
    if ('const' in out && !('enum' in out)) {
      out.enum = [out.const]
      delete out.const
    }
    return out
  }

  const operationsOf = (document: any) =>
    Object.entries(document.paths as Record<string, any>)
      .flatMap(([path, item]) => Object.keys(item).filter((m) => ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'].includes(m)).map((m) => `${m.toUpperCase()} ${path} ${item[m].operationId}`))
      .sort()

  it('has the same operations', () => {
    expect(operationsOf(doc())).toEqual(operationsOf(spec))
  })

  it.each(operations.map((op) => [op.operationId, op] as const))('%s: the same parameters, statuses, headers and content', (_, op) => {
    const ours = shapeOf(doc(), op.path, op.method.toLowerCase())
    const source = shapeOf(spec, op.path, op.method.toLowerCase())
    expect(ours.parameters).toEqual(source.parameters)
    expect(Object.keys(ours.responses).sort()).toEqual(Object.keys(source.responses).sort())
    expect(ours.responses).toEqual(source.responses)
  })

  it('has the same schema components, with the same properties and required ones', () => {
    const ours = doc().components.schemas as Record<string, any>
    const source = spec.components.schemas as Record<string, any>
    expect(Object.keys(ours).sort()).toEqual(Object.keys(source).sort())
    const outline = (s: any) => ({ type: s.type ?? null, properties: Object.keys(s.properties ?? {}).sort(), required: [...(s.required ?? [])].sort(), enum: s.enum ?? (s.const !== undefined ? [s.const] : null) })
    for (const name of Object.keys(source)) expect(outline(ours[name]), name).toEqual(outline(source[name]))
  })
})
