import { RateLimiterMemory } from 'rate-limiter-flexible'
import { beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { encodeCursor } from '../src/cursor.js'
import { base62ToBytes, bytesToBase62, newId } from '../src/ids.js'
import { StoreUnavailableError } from '../src/store/types.js'
import { eventIds, fixture, silent, testSettings, withoutRequestId, type Fixture } from './helpers.js'
import { overriding } from './store-overrides.js'

let f: Fixture
let sessionId: string
let otherSessionId: string
let ids: string[]

beforeAll(async () => {
  f = await fixture()
  sessionId = f.a.sessions[0]!.id
  otherSessionId = f.b.sessions[0]!.id
  ids = await eventIds(f.store, sessionId)
})

const list = (query = '', key?: string | null) => f.get(`/sessions/${sessionId}/events${query}`, key)
const body = async (res: Response) => (await res.json()) as any

describe('getSessionEvent', () => {
  it('returns the event with its run as the run is now', async () => {
    const res = await f.get(`/sessions/${sessionId}/events/${ids[0]}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const event = await body(res)
    expect(event).toMatchObject({ object: 'session.event', id: ids[0], session_id: sessionId, type: 'server_logs' })
    expect(event.server_run.object).toBe('server.server_run')
    expect(event.log_lines.length).toBeGreaterThan(0)

    await f.store.seeding.updateServerRun(event.server_run.id, {
      status: 'completed',
      stoppedAt: new Date('2030-01-01T00:00:00.000Z'),
    })
    const again = await body(await f.get(`/sessions/${sessionId}/events/${ids[0]}`))
    expect(again.server_run.status).toBe('completed')
    expect(again.server_run.stopped_at).toBe('2030-01-01T00:00:00.000Z')
  })

  it('shows each event of a page with its own run, read twice (from the database, then from memory)', async () => {
    const rows = await f.store.db
      .selectFrom('session_events')
      .select(['id', 'server_run_id'])
      .where('session_id', '=', sessionId)
      .execute()
    const runOf = new Map(rows.map((r) => [r.id, r.server_run_id]))
    expect(new Set(runOf.values()).size).toBeGreaterThan(1)
    for (let read = 0; read < 2; read++) {
      const page = await body(await list('?limit=100'))
      expect(page.items.length).toBe(Math.min(100, rows.length))
      for (const item of page.items) {
        expect(item.server_run?.id ?? null).toBe(runOf.get(item.id))
        if (item.server_run_error) expect(item.server_run_error.server_run.id).toBe(item.server_run.id)
      }
    }
  })

  it('returns a server_run_error event with its error and no log lines', async () => {
    const [errorId] = await eventIds(f.store, sessionId, { type: ['server_run_error'] })
    const event = await body(await f.get(`/sessions/${sessionId}/events/${errorId}`))
    expect(event.type).toBe('server_run_error')
    expect(event.log_lines).toEqual([])
    expect(event.server_run_error).toMatchObject({
      object: 'server.server_run.error',
      server_run: { id: event.server_run.id },
    })
    expect(event.server_run.status).toBe('failed')
  })

  it('404s an event that is not the session’s, naming session_event', async () => {
    const [foreign] = await eventIds(f.store, f.a.sessions[1]!.id)
    for (const eventId of [foreign, newId('sessionEvent')]) {
      const res = await f.get(`/sessions/${sessionId}/events/${eventId}`)
      expect(res.status).toBe(404)
      expect(await body(res)).toMatchObject({
        __typename: 'error',
        ok: false,
        code: 'not_found',
        entity: 'session_event',
      })
    }
  })

  it('404s a session of another instance exactly as a missing one', async () => {
    const [bEvent] = await eventIds(f.store, otherSessionId)
    const foreign = await f.get(`/sessions/${otherSessionId}/events/${bEvent}`)
    const missingId = newId('session')
    const missing = await f.get(`/sessions/${missingId}/events/${bEvent}`)
    expect(foreign.status).toBe(404)
    expect(missing.status).toBe(404)
    expect(withoutRequestId(await foreign.text())).toBe(withoutRequestId(await missing.text()))
    expect((await body(await f.get(`/sessions/${missingId}/events`))).entity).toBe('session')
  })

  it('400s malformed ids in the path, naming the field', async () => {
    const res = await f.get(`/sessions/${sessionId}/events/sev_nope`)
    expect(res.status).toBe(400)
    const error = await body(res)
    expect(error).toMatchObject({ code: 'invalid_data', message: 'The provided data is invalid.' })
    expect(error.errors.map((e: any) => e.path)).toEqual([['sessionEventId']])
    expect((await body(await f.get('/sessions/not-a-session/events'))).errors[0].path).toEqual(['sessionId'])
  })
})

describe('listSessionEvents: bad input', () => {
  it.each([
    ['limit=0', ['limit']],
    ['limit=101', ['limit']],
    ['limit=abc', ['limit']],
    ['limit=1.5', ['limit']],
    ['limit=0x10', ['limit']],
    ['limit=1e1', ['limit']],
    ['limit=%2010%20', ['limit']],
    ['order=newest', ['order']],
    ['type=server_debug', ['type', 0]],
    ['server_run_id=srr_bad', ['server_run_id', 0]],
    ['server_session_id=x', ['server_session_id', 0]],
    ['after=sev_bad', ['after']],
    ['before=123', ['before']],
    ['cursor=not-a-cursor', ['cursor']],
  ])('%s → 400 invalid_data at %j', async (query, path) => {
    const res = await list(`?${query}`)
    expect(res.status).toBe(400)
    const error = await body(res)
    expect(error).toMatchObject({ __typename: 'error', ok: false, status: 400, code: 'invalid_data' })
    expect(error.errors).toContainEqual(
      expect.objectContaining({ path, code: expect.any(String), message: expect.any(String) }),
    )
  })

  it('names every bad field at once', async () => {
    const error = await body(await list('?limit=0&order=up'))
    expect(error.errors.map((e: any) => e.path)).toEqual([['limit'], ['order']])
  })

  it('refuses after and before together, and a cursor with either', async () => {
    for (const query of [
      `after=${ids[1]}&before=${ids[5]}`,
      `cursor=${encodeCursor({ direction: 'after', id: ids[0]! })}&after=${ids[1]}`,
    ]) {
      const res = await list(`?${query}`)
      expect(res.status).toBe(400)
      expect(await body(res)).toMatchObject({ code: 'bad_request', message: expect.stringContaining('not both') })
    }
  })

  it('refuses tampered and forged cursors with a 400, never a 500', async () => {
    const good = encodeCursor({ direction: 'after', id: ids[3]! })
    const forged = (value: unknown) => `cur_${bytesToBase62(new TextEncoder().encode(JSON.stringify(value)))}`
    const cases = [
      good.slice(0, -3),
      `${good}zz`,
      forged(['sideways', ids[0]]),
      forged(['after', 'srr_0m5q3k1f8Ab3Cd4Ef5Gh6I']),
      forged(['after']),
      forged({ after: ids[0] }),
      forged('after'),
      `cur_${bytesToBase62(Uint8Array.from([0xff, 0xfe, 0x00, 0x41]))}`,
      'cur_0',
      `cur_${'z'.repeat(200)}`,
    ]
    for (const cursor of cases) {
      const res = await list(`?cursor=${cursor}`)
      expect(res.status, cursor).toBe(400)
      expect((await body(res)).code).toMatch(/^(bad_request|invalid_data)$/)
    }
    expect(base62ToBytes('!')).toBeNull()
  })

  it('takes a trailing slash as the same path', async () => {
    expect((await f.get(`/sessions/${sessionId}/events/?limit=1`)).status).toBe(200)
    expect((await f.get(`/sessions/${sessionId}/events/${ids[0]}/`)).status).toBe(200)
  })

  it('gives an empty page past either end a cursor back to the events', async () => {
    const highest = `sev_${'z'.repeat(22)}`
    const lowest = `sev_${'0'.repeat(22)}`
    for (const [query, cursor, expected] of [
      [`after=${highest}`, 'previous_cursor', ids.slice(-3)],
      [`after=${lowest}&order=desc`, 'previous_cursor', ids.slice(0, 3).reverse()],
      [`before=${lowest}`, 'next_cursor', ids.slice(0, 3)],
      [`before=${highest}&order=desc`, 'next_cursor', ids.slice(-3).reverse()],
    ] as const) {
      const empty = await body(await list(`?${query}`))
      expect(empty.items, query).toEqual([])
      const order = query.includes('desc') ? '&order=desc' : ''
      const back = await body(await list(`?cursor=${empty.pagination[cursor]}&limit=3${order}`))
      expect(
        back.items.map((i: any) => i.id),
        query,
      ).toEqual(expected)
    }
  })

  it('ignores unknown parameters', async () => {
    const res = await list('?limit=2&page=3&foo[bar]=1')
    expect(res.status).toBe(200)
    expect((await body(res)).items).toHaveLength(2)
  })
})

describe('authentication and authorisation', () => {
  const expectError = async (res: Response, status: number, code: string, message: string) => {
    expect(res.status).toBe(status)
    expect(await body(res)).toMatchObject({ __typename: 'error', ok: false, status, code, message })
  }

  it('401s a request without Authorization, with a hint on the Bearer format', async () => {
    const res = await list('', null)
    await expectError(res.clone(), 401, 'unauthorized', 'Missing Authorization header')
    expect((await body(res)).hint).toMatch(/Bearer/)
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="session-events"')
    expect((await list('', 'metorial_sk_unknown0000000000')).headers.get('www-authenticate')).toBe(
      'Bearer realm="session-events", error="invalid_token"',
    )
  })

  it('401s an unknown key and a malformed header alike', async () => {
    await expectError(await list('', 'metorial_sk_unknown0000000000'), 401, 'unauthorized', 'Invalid API key')
    for (const header of ['Basic abc', 'Bearer', 'Bearer a b', `Token ${f.a.secret_key}`]) {
      const res = await f.app.request(`/sessions/${sessionId}/events`, { headers: { Authorization: header } })
      await expectError(res, 401, 'unauthorized', 'Invalid API key')
    }
  })

  it('401s a revoked key and an expired key', async () => {
    await expectError(await list('', f.a.revoked_key), 401, 'unauthorized', 'API key is expired or has been revoked')
    const instanceId = f.a.id
    const expired = await f.store.admin.createApiKey({
      instanceId,
      kind: 'secret',
      expiresAt: new Date(Date.now() - 1000),
    })
    await expectError(await list('', expired.secret), 401, 'unauthorized', 'API key is expired or has been revoked')
  })

  it('403s a publishable key', async () => {
    await expectError(
      await list('', f.a.publishable_key),
      403,
      'forbidden',
      'You do not have permission to access this resource.',
    )
    await expectError(
      await f.get(`/sessions/${sessionId}/events/${ids[0]}`, f.a.publishable_key),
      403,
      'forbidden',
      'You do not have permission to access this resource.',
    )
  })

  it('checks the key before the parameters', async () => {
    expect((await list('?limit=0', null)).status).toBe(401)
  })
})

describe('routing, headers and failures', () => {
  it('puts metorial-req-id and metorial-version on every response', async () => {
    for (const res of [
      await list(),
      await list('', null),
      await list('?limit=0'),
      await f.get('/nope'),
      await f.get('/healthz'),
    ]) {
      expect(res.headers.get('metorial-req-id')).toMatch(/^req_[0-9A-Za-z]{22}$/)
      expect(res.headers.get('metorial-version')).toBe('2025-01-01')
    }
  })

  it('accepts a Metorial-Version request header', async () => {
    expect(
      (await f.get(`/sessions/${sessionId}/events`, undefined, { 'Metorial-Version': '2025-01-01-pulsar' })).status,
    ).toBe(200)
  })

  it('404s an unknown path with entity endpoint, and 405s a wrong method', async () => {
    const res = await f.get('/instances')
    expect(res.status).toBe(404)
    expect(await body(res)).toMatchObject({ code: 'not_found', entity: 'endpoint' })
    const remove = await f.app.request(`/sessions/${sessionId}/events`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${f.a.secret_key}` },
    })
    expect(remove.status).toBe(405)
    expect(remove.headers.get('allow')).toBe('GET, POST')
    expect(await body(remove)).toMatchObject({ __typename: 'error', code: 'method_not_allowed' })
    const sessions = await f.app.request('/sessions', {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${f.a.secret_key}` },
    })
    expect(sessions.status).toBe(405)
    expect(sessions.headers.get('allow')).toBe('GET, POST')
  })

  it('500s an unexpected failure without showing anything internal', async () => {
    const broken = overriding(f.store, {
      reader: { listEventIds: async () => Promise.reject(new Error('SQLITE_CORRUPT: secret internals at /var/db')) },
    })
    const app = createApp({ store: broken, logger: silent, config: testSettings })
    const res = await app.request(`/sessions/${sessionId}/events`, {
      headers: { Authorization: `Bearer ${f.a.secret_key}` },
    })
    expect(res.status).toBe(500)
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({
      __typename: 'error',
      ok: false,
      status: 500,
      code: 'internal_server_error',
      message: 'An internal server error occurred.',
    })
    expect(text).not.toMatch(/SQLITE|internals|\/var/)
  })

  it('503s with Retry-After when the store is unavailable, and /readyz says so', async () => {
    const down = overriding(f.store, {
      reader: { sessionInstance: async () => Promise.reject(new StoreUnavailableError('connection refused')) },
      ping: async () => Promise.reject(new StoreUnavailableError('connection refused')),
    })
    const app = createApp({ store: down, logger: silent, config: testSettings })
    const res = await app.request(`/sessions/${newId('session')}/events`, {
      headers: { Authorization: `Bearer ${f.a.secret_key}` },
    })
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(await body(res)).toMatchObject({ code: 'service_unavailable' })
    expect((await app.request('/readyz')).status).toBe(503)
    expect((await f.app.request('/readyz')).status).toBe(200)
  })

  it('429s a key over its rate limit, with RateLimit-* and Retry-After, and not another key', async () => {
    const app = createApp({
      store: f.store,
      logger: silent,
      config: { ...testSettings, rateLimit: { points: 3, durationSeconds: 60 } },
    })
    const call = (key: string) =>
      app.request(`/sessions/${sessionId}/events?limit=1`, { headers: { Authorization: `Bearer ${key}` } })
    const first = await call(f.a.secret_key)
    expect(first.status).toBe(200)
    expect(first.headers.get('ratelimit-limit')).toBe('3')
    expect(first.headers.get('ratelimit-remaining')).toBe('2')
    expect(first.headers.get('metorial-version')).toBe('2025-01-01')
    expect(first.headers.get('content-type')).toBe('application/json')
    await call(f.a.secret_key)
    await call(f.a.secret_key)
    const limited = await call(f.a.secret_key)
    expect(limited.status).toBe(429)
    expect(limited.headers.get('ratelimit-remaining')).toBe('0')
    expect(limited.headers.get('ratelimit-limit')).toBe('3')
    expect(limited.headers.get('metorial-req-id')).toMatch(/^req_[0-9A-Za-z]{22}$/)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(Number(limited.headers.get('ratelimit-reset'))).toBeGreaterThan(0)
    expect(await body(limited)).toMatchObject({ __typename: 'error', status: 429, code: 'too_many_requests' })
    // Another tenant is not starved by the first.
    const other = await app.request(`/sessions/${otherSessionId}/events?limit=1`, {
      headers: { Authorization: `Bearer ${f.b.secret_key}` },
    })
    expect(other.status).toBe(200)
  })

  it("counts a key's requests in the limiter an embedder makes for the config's limit, across apps", async () => {
    // One limiter for two apps, as one on Redis is for several processes: 3 requests in all.
    const asked: { points: number; durationSeconds: number }[] = []
    const shared = new RateLimiterMemory({ points: 3, duration: 60, keyPrefix: 'embedder' })
    const rateLimiter = (limit: { points: number; durationSeconds: number }) => (asked.push(limit), shared)
    const config = { ...testSettings, rateLimit: { points: 3, durationSeconds: 60 } }
    const [one, two] = [1, 2].map(() => createApp({ store: f.store, logger: silent, config, rateLimiter }))
    const call = (app: ReturnType<typeof createApp>) =>
      app.request(`/sessions/${sessionId}/events?limit=1`, { headers: { Authorization: `Bearer ${f.a.secret_key}` } })
    expect(asked).toEqual([config.rateLimit, config.rateLimit])
    expect([(await call(one!)).status, (await call(two!)).status, (await call(one!)).status]).toEqual([200, 200, 200])
    expect((await call(two!)).status).toBe(429)
  })

  it('serves the spec at /openapi.json and liveness at /healthz', async () => {
    const spec = await body(await f.app.request('/openapi.json'))
    expect(spec.openapi).toBe('3.1.0')
    expect(Object.keys(spec.paths)).toContain('/sessions/{sessionId}/events')
    expect(await body(await f.app.request('/healthz'))).toEqual({ status: 'ok' })
  })
})
