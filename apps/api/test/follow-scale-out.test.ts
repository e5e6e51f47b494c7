import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seed, type SeedSummary } from '../src/seed.js'
import { openStore } from '../src/store/open.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, networkPostgres } from './backend.js'
import { eventIds } from './helpers.js'
import { startServerProcess, type ServerProcess } from './server-process.js'
import { messages } from './sse.js'

// The live tail over several API processes on one PostgreSQL database: a follower on one process
// sees what is written through another (NOTIFY at commit, LISTEN on each process), resumes with
// Last-Event-ID on any process after a cut or a killed process, and loses nothing. Also: SIGTERM
// with open streams, and the rate limit that the processes share.

const target = (await networkPostgres())!
console.log(`follow: API processes over ${target.kind}`)

const started: ServerProcess[] = []
// No load shedding (as testSettings in-process): on a busy machine the processes' event loops
// lag past SHED_LOAD_AFTER_MS and refuse writes and streams with 503, which is not what these
// tests are about (shed-load.test.ts is).
const startServer = async (env: Record<string, string> = {}) => {
  const server = await startServerProcess(
    {
      SEED: 'false',
      DATABASE_URL: target.url,
      DATABASE_POOL_MAX: '4',
      RATE_LIMIT_PER_MINUTE: 'off',
      SHED_LOAD_AFTER_MS: 'off',
      ...env,
    },
    { timeoutMs: 30_000 },
  )
  started.push(server)
  return server
}

let store: SqlStore
let summary: SeedSummary
beforeAll(async () => {
  store = await openStore(target.url)
  summary = await seed(store, { sessions: 1, events: 10, instances: 1 })
})
afterAll(async () => {
  for (const s of started) s.child.kill('SIGKILL')
  await store?.close()
})

const headers = () => ({
  Authorization: `Bearer ${summary.instances[0]!.secret_key}`,
  'content-type': 'application/json',
})
async function post(base: string, path: string, body: unknown): Promise<{ id: string }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  expect(res.status).toBeLessThan(300)
  return (await res.json()) as { id: string }
}

describe(`following over several processes (${backend})`, () => {
  it('writers through two processes, a follower cut at random moments and resumed on either: every event once, in order', async () => {
    const [a, b] = [await startServer(), await startServer()]
    const session = await post(a.url, '/sessions', {})
    const run = await post(b.url, `/sessions/${session.id}/server-runs`, {
      type: 'external',
      server: { name: 'writer' },
    })
    // The follower's first stream is open (and so has its starting point) before anything is written.
    const opening = new AbortController()
    const opened = messages(
      await fetch(`${a.url}/sessions/${session.id}/events/stream`, { headers: headers(), signal: opening.signal }),
    )
    expect((await opened.next())?.retry).toBe('2000')
    let writing = true
    const writers = [a.url, b.url].map(async (base, w) => {
      for (let i = 0; i < 60; i++) {
        await post(base, `/sessions/${session.id}/events`, {
          server_run_id: run.id,
          log_lines: [{ type: 'stdout', line: `w${w} ${i}` }],
        })
        if (i % 7 === 0) await new Promise((r) => setTimeout(r, 5))
      }
    })
    void Promise.all(writers).then(() => (writing = false))

    const seen: string[] = []
    let random = 12345
    const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let connection = 0; connection < 200 && (writing || seen.length < 120); connection++) {
      const base = connection % 2 === 0 ? a.url : b.url
      const controller = connection === 0 ? opening : new AbortController()
      let sse = opened
      if (connection > 0) {
        const res = await fetch(`${base}/sessions/${session.id}/events/stream`, {
          headers: { ...headers(), ...(seen.length > 0 && { 'Last-Event-ID': seen.at(-1)! }) },
          signal: controller.signal,
        })
        expect(res.status).toBe(200)
        sse = messages(res)
      }
      // Read a random number of events, then cut the connection.
      const take = 1 + Math.floor(next() * 12)
      for (let k = 0; k < take; k++) {
        const m = await sse.next(writing ? 5_000 : 500).catch(() => undefined)
        if (!m) break
        if (m.id) seen.push(m.id)
      }
      controller.abort()
      await sse.cancel()
    }
    await Promise.all(writers)
    const all = await eventIds(store, session.id)
    expect(all).toHaveLength(120)
    expect(seen).toEqual(all)
  }, 120_000)

  it('followers sharing reads on both processes, joining, stalling and reconnecting while writers append through both: every event once, in order', async () => {
    const [a, b] = [await startServer(), await startServer()]
    const session = await post(a.url, '/sessions', {})
    const run = await post(b.url, `/sessions/${session.id}/server-runs`, { type: 'external', server: { name: 'w' } })
    const open = async (base: string, after?: string) => {
      const res = await fetch(`${base}/sessions/${session.id}/events/stream`, {
        headers: { ...headers(), ...(after !== undefined && { 'Last-Event-ID': after }) },
      })
      expect(res.status).toBe(200)
      const sse = messages(res)
      expect((await sse.next())?.retry).toBe('2000')
      return sse
    }
    const early = await Promise.all([open(a.url), open(a.url), open(b.url), open(b.url)])
    let lastWritten: string | undefined
    const writers = [a.url, b.url].map(async (base, w) => {
      for (let i = 0; i < 30; i++) {
        await post(base, `/sessions/${session.id}/events`, {
          server_run_id: run.id,
          log_lines: Array.from({ length: i % 6 === 0 ? 200 : 1 }, (_, j) => ({
            type: 'stdout',
            line: `w${w} ${i}.${j}`,
          })),
        })
      }
    })
    const done = Promise.all(writers).then(async () => (lastWritten = (await eventIds(store, session.id)).at(-1)))
    /** Reads until it has the last event written; `stallMs`: reads nothing that long after a few; `reconnect`: now and then, on the other process. */
    const follow = async (
      sse: Awaited<ReturnType<typeof open>>,
      options: { stallMs?: number; reconnect?: boolean } = {},
    ) => {
      const seen: string[] = []
      let heardAt = Date.now()
      for (let round = 0; !(lastWritten !== undefined && seen.length > 0 && seen.at(-1)! >= lastWritten); round++) {
        if (options.stallMs && round === 5) await new Promise((r) => setTimeout(r, options.stallMs))
        if (options.reconnect && round % 7 === 6 && seen.length > 0) {
          await sse.cancel()
          sse = await open(round % 2 === 0 ? a.url : b.url, seen.at(-1))
        }
        const m = await sse.next(1_000)
        if (!m) {
          if (Date.now() - heardAt > 10_000) break
          continue
        }
        heardAt = Date.now()
        if (m.id) seen.push(m.id)
      }
      await sse.cancel()
      return seen
    }
    const late = (async () => {
      await new Promise((r) => setTimeout(r, 150))
      return follow(await open(b.url))
    })()
    const results = await Promise.all([
      follow(early[0]!),
      follow(early[1]!, { stallMs: 1_500 }),
      follow(early[2]!, { reconnect: true }),
      follow(early[3]!, { stallMs: 800, reconnect: true }),
    ])
    const lateSeen = await late
    await done
    const all = await eventIds(store, session.id)
    for (const [i, seen] of results.entries()) expect(seen, `follower ${i}`).toEqual(all)
    // It joined later: from where it started, every event once.
    expect(lateSeen).toEqual(all.slice(all.indexOf(lateSeen[0]!)))
  }, 120_000)

  it('a process killed under a follower: the follower resumes on the other and loses nothing', async () => {
    const [a, b] = [await startServer(), await startServer()]
    const session = await post(b.url, '/sessions', {})
    const run = await post(b.url, `/sessions/${session.id}/server-runs`, {
      type: 'external',
      server: { name: 'writer' },
    })
    const first = messages(await fetch(`${a.url}/sessions/${session.id}/events/stream`, { headers: headers() }))
    expect((await first.next())?.retry).toBe('2000')
    const written: string[] = []
    for (let i = 0; i < 5; i++)
      written.push(
        (
          await post(b.url, `/sessions/${session.id}/events`, {
            server_run_id: run.id,
            log_lines: [{ type: 'stdout', line: `before ${i}` }],
          })
        ).id,
      )
    const seen = (await first.events(5)).map((e) => e.id)
    a.child.kill('SIGKILL')
    await a.exited
    expect(await first.next(2_000).catch(() => undefined)).toBeUndefined()
    for (let i = 0; i < 5; i++)
      written.push(
        (
          await post(b.url, `/sessions/${session.id}/events`, {
            server_run_id: run.id,
            log_lines: [{ type: 'stdout', line: `after ${i}` }],
          })
        ).id,
      )
    const resumed = messages(
      await fetch(`${b.url}/sessions/${session.id}/events/stream`, {
        headers: { ...headers(), 'Last-Event-ID': seen.at(-1)! },
      }),
    )
    seen.push(...(await resumed.events(5)).map((e) => e.id))
    await resumed.cancel()
    expect(seen).toEqual(written)
  }, 60_000)

  it('SIGTERM with open streams: they end, and the process exits 0 within its grace period', async () => {
    const server = await startServer()
    const session = await post(server.url, '/sessions', {})
    const streams = await Promise.all(
      [0, 1, 2].map(async () => {
        const sse = messages(await fetch(`${server.url}/sessions/${session.id}/events/stream`, { headers: headers() }))
        expect((await sse.next())?.retry).toBe('2000')
        return sse
      }),
    )
    const stopping = performance.now()
    server.child.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    expect(performance.now() - stopping).toBeLessThan(5_000)
    for (const sse of streams) expect(await sse.next(1_000).catch(() => undefined)).toBeUndefined()
  }, 60_000)

  // PGlite served on a socket is one session for every client: the limiter's named statements
  // collide there, so this needs a real server (CI has one; see the first line of the output).
  it.runIf(backend === 'postgres')(
    'one rate limit per key over all the processes',
    async () => {
      const [a, b] = [
        await startServer({ RATE_LIMIT_PER_MINUTE: '6' }),
        await startServer({ RATE_LIMIT_PER_MINUTE: '6' }),
      ]
      const statuses: number[] = []
      for (let i = 0; i < 10; i++) {
        const res = await fetch(
          `${(i % 2 === 0 ? a : b).url}/sessions/${summary.instances[0]!.sessions[0]!.id}/events?limit=1`,
          { headers: headers() },
        )
        statuses.push(res.status)
      }
      expect(statuses.filter((s) => s === 200)).toHaveLength(6)
      expect(statuses.slice(6)).toEqual([429, 429, 429, 429])
    },
    60_000,
  )

  // Advisory locks are a session's: PGlite served on a socket is one session for every client.
  it.runIf(backend === 'postgres')(
    'one cap on streams per key over all the processes; a process killed lets go of its streams',
    async () => {
      const [a, b] = [await startServer({ STREAMS_PER_KEY: '3' }), await startServer({ STREAMS_PER_KEY: '3' })]
      const sessionId = summary.instances[0]!.sessions[0]!.id
      const open = (server: ServerProcess) =>
        fetch(`${server.url}/sessions/${sessionId}/events/stream`, { headers: headers() })
      const onA = [await open(a), await open(a)]
      const onB = await open(b)
      for (const res of [...onA, onB]) expect(res.status).toBe(200)
      // Three open across the two: a fourth is refused on either.
      for (const server of [a, b]) {
        const refused = await open(server)
        expect(refused.status).toBe(429)
        expect(refused.headers.get('retry-after')).toBe('5')
        await refused.body?.cancel()
      }
      // One closed on B frees a slot that A can take.
      await onB.body!.cancel()
      await expect
        .poll(async () => {
          const res = await open(a)
          if (res.status === 200) onA.push(res)
          else await res.body?.cancel()
          return res.status
        })
        .toBe(200)
      expect((await open(b)).status).toBe(429)
      // A dies holding three: its connection gone, B has all three again.
      a.child.kill('SIGKILL')
      await a.exited
      const onBAgain: Response[] = []
      for (let i = 0; i < 3; i++) {
        await expect
          .poll(
            async () => {
              const res = await open(b)
              if (res.status === 200) onBAgain.push(res)
              else await res.body?.cancel()
              return res.status
            },
            { timeout: 10_000 },
          )
          .toBe(200)
      }
      expect((await open(b)).status).toBe(429)
      for (const res of onBAgain) await res.body?.cancel()
    },
    60_000,
  )
})
