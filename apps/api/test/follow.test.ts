import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { seed } from '../src/seed.js'
import { openStore } from '../src/store/open.js'
import { backend, onPostgres } from './backend.js'
import { eventIds, fixture, sessionRuns, silent, testSettings, type Fixture } from './helpers.js'
import { messages } from './sse.js'
import { countingEventReads } from './store-overrides.js'

// The live tail (streamSessionEvents) through the real app: the message format, where a stream
// starts, filters, a follower that does not read, the cap on streams, shutdown, and a writer on
// another connection.

let f: Fixture
let sessionId: string
let runId: string
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 30 })
  sessionId = f.a.sessions[0]!.id
  runId = (await sessionRuns(f.store, sessionId)).find((r) => r.status === 'active')!.id
})

const auth = (key = f.a.secret_key) => ({ Authorization: `Bearer ${key}` })
const stream = (query = '', headers: Record<string, string> = {}, app = f.app) =>
  app.request(`/sessions/${sessionId}/events/stream${query}`, { headers: { ...auth(), ...headers } })
const append = (line: string, serverRunId = runId) =>
  f.store.seeding.appendLogEvents([{ serverRunId, lines: [{ type: 'stdout', line }] }])

describe(`streamSessionEvents (${backend})`, () => {
  it('answers text/event-stream: retry first, then each new event as getSessionEvent shows it', async () => {
    const res = await stream()
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.headers.get('metorial-req-id')).toMatch(/^req_/)
    const sse = messages(res)
    expect(await sse.next()).toEqual({ retry: '2000' })
    const [id] = await append('live one')
    const [got] = await sse.events(1)
    expect(got!.id).toBe(id)
    expect((await sse.next(50))?.id).toBeUndefined()
    const viaGet = await (await f.get(`/sessions/${sessionId}/events/${id}`)).json()
    expect(got!.event).toEqual(viaGet)
    await sse.cancel()
  })

  it('starts after `after`, or after Last-Event-ID, which wins; `tail` sends the newest first', async () => {
    const all = await eventIds(f.store, sessionId)
    const from = all.at(-4)!
    const after = messages(await stream(`?after=${from}`))
    expect((await after.events(3)).map((e) => e.id)).toEqual(all.slice(-3))
    await after.cancel()
    const resumed = messages(await stream(`?after=${all[0]}`, { 'Last-Event-ID': all.at(-2)! }))
    expect((await resumed.events(1)).map((e) => e.id)).toEqual(all.slice(-1))
    await resumed.cancel()
    const tail = messages(await stream('?tail=5'))
    expect((await tail.events(5)).map((e) => e.id)).toEqual(all.slice(-5))
    const [next] = await append('after the tail')
    expect((await tail.events(1)).map((e) => e.id)).toEqual([next])
    await tail.cancel()
  })

  it('says where it stands before the first event, so that a reconnect then misses nothing', async () => {
    const newest = (await eventIds(f.store, sessionId)).at(-1)!
    const first = messages(await stream())
    expect(await first.next()).toEqual({ retry: '2000' })
    expect(await first.next(200)).toBeUndefined()
    expect(first.position).toBe(newest)
    await first.cancel()
    // Written while the client was away, before it had received any event.
    const [missed] = await append('while reconnecting')
    const again = messages(await stream('', { 'Last-Event-ID': first.position! }))
    expect((await again.events(1)).map((e) => e.id)).toEqual([missed])
    await again.cancel()
    // A session without events stands before its first.
    const empty = await f.app.request('/sessions', { method: 'POST', headers: auth() })
    const { id } = (await empty.json()) as { id: string }
    const start = messages(await f.app.request(`/sessions/${id}/events/stream`, { headers: auth() }))
    await start.next()
    await start.next(200)
    expect(start.position).toBe(`sev_${'0'.repeat(22)}`)
    await start.cancel()
  })

  it('applies the list filters', async () => {
    const runs = await sessionRuns(f.store, sessionId)
    const other = runs.find((r) => r.id !== runId && r.status === 'active') ?? runs.find((r) => r.id !== runId)!
    const filtered = messages(await stream(`?server_run_id=${runId}&type=server_logs`))
    await f.store.seeding.appendLogEvents([
      { serverRunId: other.id, lines: [{ type: 'stdout', line: 'not followed' }] },
    ])
    const [mine] = await append('followed')
    const [got] = await filtered.events(1)
    expect(got!.id).toBe(mine)
    expect(got!.event.server_run.id).toBe(runId)
    await filtered.cancel()
  })

  it('answers errors before the stream opens as JSON: 400, 401, 403, 404', async () => {
    expect((await stream('?tail=101')).status).toBe(400)
    expect((await stream('', { 'Last-Event-ID': 'not-an-id' })).status).toBe(400)
    expect((await f.app.request(`/sessions/${sessionId}/events/stream`)).status).toBe(401)
    expect((await stream('', auth(f.a.publishable_key))).status).toBe(403)
    const foreign = await stream('', auth(f.b.secret_key))
    expect(foreign.status).toBe(404)
    expect(foreign.headers.get('content-type')).toBe('application/json')
    expect(await foreign.json()).toMatchObject({ code: 'not_found', entity: 'session' })
  })

  it('reads the store at the pace of a follower that does not read: nothing buffered beyond a page, nothing lost', async () => {
    const counting = countingEventReads(f.store)
    const app = createApp({ store: counting.store, logger: silent, config: { ...testSettings, cacheBytes: 0 } })
    const res = await stream('', {}, app)
    const sse = messages(res)
    expect(await sse.next()).toEqual({ retry: '2000' })
    const written: string[] = []
    for (let batch = 0; batch < 20; batch++) {
      written.push(
        ...(await f.store.seeding.appendLogEvents(
          Array.from({ length: 500 }, (_, i) => ({
            serverRunId: runId,
            lines: [{ type: 'stdout' as const, line: `bulk ${batch}.${i}` }],
          })),
        )),
      )
    }
    await new Promise((r) => setTimeout(r, 300))
    // 10,000 events written; the stream has read at most a couple of pages ahead of its reader.
    expect(counting.read()).toBeLessThanOrEqual(100)
    const got = await sse.events(10_000, 20_000)
    expect(got.map((e) => e.id)).toEqual(written)
    await sse.cancel()
  }, 60_000)

  it('caps the streams of one key (429 with Retry-After), and frees a slot as soon as a stream closes', async () => {
    const app = createApp({ store: f.store, logger: silent, config: { ...testSettings, streamsPerKey: 2 } })
    const one = messages(await stream('', {}, app))
    const two = messages(await stream('', {}, app))
    await Promise.all([one.next(), two.next()])
    const three = await stream('', {}, app)
    expect(three.status).toBe(429)
    expect(three.headers.get('retry-after')).toBeTruthy()
    expect(await three.json()).toMatchObject({ code: 'too_many_requests' })
    // Another key has its own slots.
    expect((await stream('', auth(f.b.secret_key), app)).status).toBe(404)
    await one.cancel()
    await new Promise((r) => setTimeout(r, 20))
    const four = await stream('', {}, app)
    expect(four.status).toBe(200)
    await messages(four).cancel()
    await two.cancel()
  })

  it('ends open streams cleanly when the server shuts down', async () => {
    const shutdown = new AbortController()
    const app = createApp({ store: f.store, logger: silent, config: testSettings, shutdown: shutdown.signal })
    const sse = messages(await stream('', {}, app))
    expect(await sse.next()).toEqual({ retry: '2000' })
    shutdown.abort()
    expect(await sse.next(2_000)).toBeUndefined()
    // And a stream asked for after that ends at once.
    const late = messages(await stream('', {}, app))
    expect(await late.next(1_000)).toBeUndefined()
  })
})

describe.runIf(!onPostgres)('a writer on another connection to the same SQLite file', () => {
  // Made in beforeAll, not as the describe is collected: a skipped describe runs no afterAll.
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'session-events-follow-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('is noticed within about 100 ms', async () => {
    const url = `sqlite:${join(dir, 'shared.db')}`
    const served = await openStore(url)
    const other = await openStore(url)
    try {
      const summary = await seed(other, { sessions: 1, events: 3, instances: 1 })
      const session = summary.instances[0]!.sessions[0]!.id
      const run = (await sessionRuns(other, session))[0]!.id
      const app = createApp({ store: served, logger: silent, config: testSettings })
      const res = await app.request(`/sessions/${session}/events/stream`, {
        headers: { Authorization: `Bearer ${summary.instances[0]!.secret_key}` },
      })
      const sse = messages(res)
      expect(await sse.next()).toEqual({ retry: '2000' })
      await new Promise((r) => setTimeout(r, 150))
      const started = performance.now()
      const [id] = await other.seeding.appendLogEvents([
        { serverRunId: run, lines: [{ type: 'stdout', line: 'from the other process' }] },
      ])
      const [got] = await sse.events(1, 2_000)
      const took = performance.now() - started
      expect(got!.id).toBe(id)
      expect(took).toBeLessThan(1_000)
      await sse.cancel()
    } finally {
      await served.close()
      await other.close()
    }
  })
})

afterAll(async () => {
  await f?.store.close()
})
