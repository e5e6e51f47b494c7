// @session-events/client against the real API: the app in-process (fetch → app.fetch) and the
// same app served over HTTP. Nothing is stubbed: a seeded SQLite store under the real app.
// These tests live here, in the workspace that depends on both the client and the API, so that
// turbo builds both before they run.
import { type SeedSummary, createApp, openStore, seed, serve } from '@session-events/api'
import {
  type SessionEvent,
  SessionEventsConnectionError,
  SessionEventsError,
  type SessionEventsClientOptions,
  createSessionEventsClient,
} from '@session-events/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

process.env.LOG_LEVEL = 'silent' // the app's request log

const EVENTS = 1_100 // server_logs events per session; the seed adds server_run_error events

type Instance = SeedSummary['instances'][number]
type Transport = Pick<SessionEventsClientOptions, 'baseUrl' | 'fetch'>

let app: ReturnType<typeof createApp>
let a: Instance
let b: Instance
let sessionId: string
let expectedCount: number

beforeAll(async () => {
  const store = await openStore('sqlite::memory:')
  const summary = await seed(store, { sessions: 1, events: EVENTS })
  ;[a, b] = summary.instances as [Instance, Instance]
  sessionId = a.sessions[0]!.id
  expectedCount = a.sessions[0]!.events
  app = createApp({ store, config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false } })
})

let server: Awaited<ReturnType<typeof serve>> | undefined
afterAll(async () => {
  await server?.close()
})

const transports: [string, () => Promise<Transport>][] = [
  [
    'in-process',
    async () => ({
      baseUrl: 'http://session-events.test',
      fetch: (input, init) => app.fetch(new Request(input, init)),
    }),
  ],
  [
    'over HTTP',
    async () => {
      server ??= await serve({ app, port: 0 })
      return { baseUrl: server.url }
    },
  ],
]

describe.each(transports)('client e2e, %s', (_name, transport) => {
  let options: Transport
  const client = (apiKey = a.secret_key, more: Partial<SessionEventsClientOptions> = {}) =>
    createSessionEventsClient({ apiKey, ...options, maxRetries: 0, ...more })
  async function all(iterable: AsyncIterable<SessionEvent>): Promise<SessionEvent[]> {
    const events: SessionEvent[] = []
    for await (const event of iterable) events.push(event)
    return events
  }

  let ascending: SessionEvent[]
  beforeAll(async () => {
    options = await transport()
    ascending = await all(client().sessionEvents.iterate(sessionId))
  })

  it(`yields every event of a session of ${EVENTS}+ events exactly once, in id order`, () => {
    expect(expectedCount).toBeGreaterThanOrEqual(EVENTS)
    const ids = ascending.map((e) => e.id)
    expect(ids).toHaveLength(expectedCount)
    expect(new Set(ids).size).toBe(expectedCount)
    expect(ids).toEqual([...ids].sort())
    expect(ascending.every((e) => e.session_id === sessionId)).toBe(true)
  })

  it.each([7, 100])('yields the same events with pages of %i', async (limit) => {
    const ids = (await all(client().sessionEvents.iterate(sessionId, { limit }))).map((e) => e.id)
    expect(ids).toEqual(ascending.map((e) => e.id))
  })

  it('yields them newest first with order: desc', async () => {
    const descending = await all(client().sessionEvents.iterate(sessionId, { order: 'desc', limit: 33 }))
    expect(descending.map((e) => e.id)).toEqual(ascending.map((e) => e.id).reverse())
  })

  it.each(['asc', 'desc'] as const)('filters by type, order %s', async (order) => {
    const errors = await all(
      client().sessionEvents.iterate(sessionId, { order, type: ['server_run_error'], limit: 10 }),
    )
    const expected = ascending.filter((e) => e.type === 'server_run_error').map((e) => e.id)
    expect(expected.length).toBeGreaterThan(0)
    expect(errors.map((e) => e.id)).toEqual(order === 'asc' ? expected : [...expected].reverse())
    expect(errors.every((e) => e.server_run_error !== null && e.log_lines.length === 0)).toBe(true)
  })

  it.each(['asc', 'desc'] as const)('filters by several server runs (repeated keys), order %s', async (order) => {
    const runs = [...new Set(ascending.map((e) => e.server_run?.id))].filter((id) => id !== undefined)
    expect(runs.length).toBeGreaterThan(2)
    const chosen = [runs[0]!, runs.at(-1)!]
    const events = await all(client().sessionEvents.iterate(sessionId, { order, server_run_id: chosen, limit: 50 }))
    const expected = ascending.filter((e) => chosen.includes(e.server_run!.id)).map((e) => e.id)
    expect(events.map((e) => e.id)).toEqual(order === 'asc' ? expected : [...expected].reverse())
  })

  it('combines filters', async () => {
    const run = ascending.find((e) => e.type === 'server_run_error')!.server_run!.id
    const events = await all(client().sessionEvents.iterate(sessionId, { server_run_id: [run], type: ['server_logs'] }))
    const expected = ascending.filter((e) => e.server_run!.id === run && e.type === 'server_logs').map((e) => e.id)
    expect(events.map((e) => e.id)).toEqual(expected)
  })

  it('starts after a given event and goes on to the end', async () => {
    const start = ascending[500]!.id
    const events = await all(client().sessionEvents.iterate(sessionId, { after: start, limit: 64 }))
    expect(events.map((e) => e.id)).toEqual(ascending.slice(501).map((e) => e.id))
  })

  it('walks pages that tell where they stand', async () => {
    const pages = []
    for await (const page of client().sessionEvents.pages(sessionId, { limit: 100 })) pages.push(page)
    expect(pages).toHaveLength(Math.ceil(expectedCount / 100))
    expect(pages.flatMap((p) => p.items.map((e) => e.id))).toEqual(ascending.map((e) => e.id))
    expect(pages[0]!.pagination.has_more_before).toBe(false)
    expect(pages.at(-1)!.pagination).toMatchObject({ has_more_after: false, next_cursor: null })
    expect(pages.slice(0, -1).every((p) => p.items.length === 100 && p.pagination.has_more_after)).toBe(true)
  })

  it("lists the instance's sessions newest first, and walks them all a page at a time", async () => {
    const created = []
    for (let i = 0; i < 3; i++) created.push((await client().sessions.create({ metadata: { n: i } })).id)
    const first = await client().sessions.list({ limit: 2 })
    expect(first.items.map((s) => s.id)).toEqual(created.slice(-2).reverse())
    expect(first.pagination.has_more_after).toBe(true)
    const every = []
    for await (const session of client().sessions.iterate({ limit: 2 })) every.push(session.id)
    expect(every.slice(0, 3)).toEqual([...created].reverse())
    expect(every).toContain(sessionId)
    expect(new Set(every).size).toBe(every.length)
    expect(every).toEqual([...every].sort().reverse())
    expect(every.some((id) => b.sessions.some((s) => s.id === id))).toBe(false)
    const active = []
    for await (const session of client().sessions.iterate({ status: ['active'] })) active.push(session.id)
    expect(active).toEqual(every)
  })

  it('gets one event, the same as listed', async () => {
    for (const listed of [ascending[0]!, ascending.find((e) => e.type === 'server_run_error')!, ascending.at(-1)!]) {
      expect(await client().sessionEvents.get(sessionId, listed.id)).toEqual(listed)
    }
  })

  it('revives dates on request', async () => {
    const listed = ascending[0]!
    const revived = createSessionEventsClient({
      apiKey: a.secret_key,
      ...options,
      reviveDates: true,
    })
    const event = await revived.sessionEvents.get(sessionId, listed.id)
    expect(event.created_at).toEqual(new Date(listed.created_at))
    expect(event.server_run?.server.created_at).toBeInstanceOf(Date)
  })

  it('keeps the raw client for { data, error } results', async () => {
    const { data, error, response } = await client().raw.GET('/sessions/{sessionId}/events', {
      params: { path: { sessionId }, query: { limit: 2 } },
    })
    expect(error).toBeUndefined()
    expect(data?.items.map((e) => e.id)).toEqual(ascending.slice(0, 2).map((e) => e.id))
    expect(response.headers.get('metorial-version')).toBe('2025-01-01')
  })

  describe('errors', () => {
    async function failure(promise: Promise<unknown>): Promise<SessionEventsError> {
      const error = await promise.catch((e: unknown) => e)
      expect(error).toBeInstanceOf(SessionEventsError)
      expect((error as SessionEventsError).requestId).toMatch(/^req_[0-9A-Za-z]{22}$/)
      return error as SessionEventsError
    }

    it('401 for an unknown key', async () => {
      const error = await failure(client('metorial_sk_unknown00000000000000').sessionEvents.list(sessionId))
      expect(error).toMatchObject({ status: 401, code: 'unauthorized', message: 'Invalid API key' })
    })

    it('401 for a revoked key', async () => {
      const error = await failure(client(a.revoked_key).sessionEvents.list(sessionId))
      expect(error).toMatchObject({
        status: 401,
        code: 'unauthorized',
        message: 'API key is expired or has been revoked',
      })
    })

    it('403 for a publishable key', async () => {
      const error = await failure(client(a.publishable_key).sessionEvents.list(sessionId))
      expect(error).toMatchObject({ status: 403, code: 'forbidden' })
    })

    it('404 for a session that does not exist, and for one of another instance', async () => {
      const missing = await failure(client().sessionEvents.list('ses_0000000000000000000000'))
      const foreign = await failure(client().sessionEvents.list(b.sessions[0]!.id))
      for (const error of [missing, foreign]) {
        expect(error).toMatchObject({
          status: 404,
          code: 'not_found',
          entity: 'session',
          message: 'The requested session could not be found.',
        })
        expect(error.hint).toEqual(expect.any(String))
      }
    })

    it('404 for an event that is not one of the session', async () => {
      const other = await client(b.secret_key).sessionEvents.list(b.sessions[0]!.id, { limit: 1 })
      const error = await failure(client().sessionEvents.get(sessionId, other.items[0]!.id))
      expect(error).toMatchObject({ status: 404, code: 'not_found', entity: 'session_event' })
    })

    it('400 invalid_data naming the bad field', async () => {
      const error = await failure(client().sessionEvents.list(sessionId, { limit: 1000 }))
      expect(error).toMatchObject({
        status: 400,
        code: 'invalid_data',
        message: 'The provided data is invalid.',
      })
      expect(error.errors?.map((issue) => issue.path)).toEqual([['limit']])
    })

    it('400 bad_request for after and before together', async () => {
      const [first, second] = ascending
      const error = await failure(client().sessionEvents.list(sessionId, { after: first!.id, before: second!.id }))
      expect(error).toMatchObject({ status: 400, code: 'bad_request' })
    })
  })
})

describe('client e2e, over HTTP only', () => {
  it('waits out the rate limit (Retry-After) and carries on', async () => {
    const store = await openStore('sqlite::memory:')
    const { instances } = await seed(store, { sessions: 1, events: 5 })
    const limited = await serve({
      app: createApp({
        store,
        config: { logLevel: 'silent', rateLimit: { points: 2, durationSeconds: 1 }, shedLoadAfterMs: false },
      }),
      port: 0,
    })
    try {
      const statuses: number[] = []
      const client = createSessionEventsClient({
        apiKey: instances[0]!.secret_key,
        baseUrl: limited.url,
        maxRetries: 3,
        fetch: async (request) => {
          const response = await fetch(request)
          statuses.push(response.status)
          return response
        },
      })
      const events = []
      for await (const event of client.sessionEvents.iterate(instances[0]!.sessions[0]!.id, {
        limit: 2,
      }))
        events.push(event)
      expect(events).toHaveLength(instances[0]!.sessions[0]!.events)
      expect(statuses).toContain(429)
      expect(statuses.at(-1)).toBe(200)

      const impatient = createSessionEventsClient({
        apiKey: instances[0]!.secret_key,
        baseUrl: limited.url,
        maxRetries: 0,
      })
      const sessionId = instances[0]!.sessions[0]!.id
      const errors = await Promise.all(
        [1, 2, 3].map(() => impatient.sessionEvents.list(sessionId).catch((e: unknown) => e)),
      )
      expect(
        errors.some((e) => e instanceof SessionEventsError && e.status === 429 && e.code === 'too_many_requests'),
      ).toBe(true)
    } finally {
      await limited.close()
      await store.close()
    }
  })

  it('throws a SessionEventsConnectionError when nothing listens', async () => {
    const store = await openStore('sqlite::memory:')
    const gone = await serve({
      app: createApp({ store, config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false } }),
      port: 0,
    })
    await gone.close()
    await store.close()
    const client = createSessionEventsClient({
      apiKey: 'metorial_sk_whatever',
      baseUrl: gone.url,
      maxRetries: 1,
      retryDelayMs: 1,
    })
    const error = await client.sessionEvents.list('ses_0000000000000000000000').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsConnectionError)
    expect((error as Error).message).toMatch(/ECONNREFUSED/)
  })

  it('stops an iteration when the caller aborts', async () => {
    const { url } = (server ??= await serve({ app, port: 0 }))
    const controller = new AbortController()
    const client = createSessionEventsClient({ apiKey: a.secret_key, baseUrl: url })
    let seen = 0
    const walk = async () => {
      for await (const _ of client.sessionEvents.iterate(sessionId, { limit: 10 }, { signal: controller.signal })) {
        if (++seen === 25) controller.abort()
      }
    }
    await expect(walk()).rejects.toMatchObject({ name: 'AbortError' })
    expect(seen).toBe(25)
  })
})
