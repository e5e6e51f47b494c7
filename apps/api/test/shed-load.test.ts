import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { seed } from '../src/seed.js'
import { openStore } from '../src/store/open.js'
import type { StoreReader } from '../src/store/types.js'
import { backend, networkPostgres } from './backend.js'
import { fixture, silent, testSettings, type Fixture } from './helpers.js'
import { overriding } from './store-overrides.js'

// Shedding load: while the event loop lags past its bound, a request has waited that long for a
// PostgreSQL connection, or as many requests as the bound are being answered, new API requests
// are answered 503 at once (the client and CLI retry them), /readyz says the process is not ready
// and why, /healthz that it is alive; once the queue is gone, requests are served.

let f: Fixture
const shutdown = new AbortController()
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 5 })
})
afterAll(async () => {
  shutdown.abort()
  await f?.store.close()
})

/** Keeps the event loop busy, as a flood of requests would. */
function stall(ms: number) {
  const until = performance.now() + ms
  while (performance.now() < until) {}
}
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('load shedding', () => {
  it('answers 503 with Retry-After while the event loop lags, and serves again once it does not', async () => {
    const app = createApp({
      store: f.store,
      logger: silent,
      config: { ...testSettings, shedLoadAfterMs: 150 },
      shutdown: shutdown.signal,
    })
    const list = () =>
      app.request(`/sessions/${f.a.sessions[0]!.id}/events?limit=1`, {
        headers: { Authorization: `Bearer ${f.a.secret_key}` },
      })
    expect((await list()).status).toBe(200)
    stall(700)
    // The shedder's timer, late by the stall, runs before this one.
    await tick(1)
    const refused = await list()
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(await refused.json()).toMatchObject({ __typename: 'error', code: 'service_unavailable' })
    expect((await app.request('/readyz')).status).toBe(503)
    expect((await app.request('/healthz')).status).toBe(200)
    // A calm window clears it.
    await tick(900)
    expect((await list()).status).toBe(200)
    expect((await app.request('/readyz')).status).toBe(200)
  })

  it('answers 503 at once while SHED_LOAD_IN_FLIGHT requests are being answered', async () => {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const waiting = overriding(f.store, {
      reader: {
        listEventIds: async (query: Parameters<StoreReader['listEventIds']>[0]) => {
          await held
          return f.store.reader.listEventIds(query)
        },
      } satisfies Partial<StoreReader>,
    })
    const app = createApp({
      store: waiting,
      logger: silent,
      config: { ...testSettings, shedLoadAfterMs: 200, shedLoadInFlight: 2 },
      shutdown: shutdown.signal,
    })
    const list = () =>
      app.request(`/sessions/${f.a.sessions[0]!.id}/events?limit=1`, {
        headers: { Authorization: `Bearer ${f.a.secret_key}` },
      })
    const first = [list(), list()].map((res) => Promise.resolve(res))
    await tick(20)
    const refused = await list()
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    const ready = await app.request('/readyz')
    expect(ready.status).toBe(503)
    expect(await ready.json()).toMatchObject({ status: 'overloaded', reason: 'requests_in_flight' })
    expect((await app.request('/healthz')).status).toBe(200)
    release()
    for (const res of await Promise.all(first)) expect(res.status).toBe(200)
    expect((await list()).status).toBe(200)
    expect((await app.request('/readyz')).status).toBe(200)
  })

  it.skipIf(backend === 'sqlite')(
    'answers 503 at once while a request has waited too long for a PostgreSQL connection (a pool of 1 held busy)',
    async () => {
      const target = (await networkPostgres())!
      const store = await openStore(target.url, { databasePoolMax: 1, databasePoolTimeoutMs: 10_000 })
      try {
        const summary = await seed(store, { sessions: 1, events: 3, instances: 1 })
        const instance = summary.instances[0]!
        const app = createApp({
          store,
          logger: silent,
          config: { ...testSettings, shedLoadAfterMs: 150, cacheBytes: 0 },
          shutdown: shutdown.signal,
        })
        const list = () =>
          app.request(`/sessions/${instance.sessions[0]!.id}/events?limit=1`, {
            headers: { Authorization: `Bearer ${instance.secret_key}` },
          })
        expect((await list()).status).toBe(200)
        // The pool's one connection, held by a long query.
        let release!: () => void
        const held = new Promise<void>((r) => (release = r))
        const holding = store.db.connection().execute(() => held)
        const waited = list()
        await tick(300)
        const started = performance.now()
        const refused = await list()
        expect(refused.status).toBe(503)
        expect(refused.headers.get('retry-after')).toBe('1')
        expect(performance.now() - started).toBeLessThan(100)
        const ready = await app.request('/readyz')
        expect(ready.status).toBe(503)
        expect(await ready.json()).toMatchObject({ status: 'overloaded', reason: 'database_connection_wait' })
        expect((await app.request('/healthz')).status).toBe(200)
        release()
        await holding
        expect((await waited).status).toBe(200)
        expect((await list()).status).toBe(200)
        expect((await app.request('/readyz')).status).toBe(200)
      } finally {
        await store.close()
      }
    },
  )
})
