import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { fixture, silent, testSettings, type Fixture } from './helpers.js'

// Shedding load: while the event loop lags past its bound, new API requests are answered 503 at
// once (the client and CLI retry them), /readyz says the process is not ready, /healthz that it
// is alive; once the loop is free again, requests are served.

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
})
