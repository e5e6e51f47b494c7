import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seed, type SeedSummary } from '../src/seed.js'
import { openStore } from '../src/store/open.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, networkPostgres } from './backend.js'
import { eventIds, sessionRuns } from './helpers.js'
import { startServerProcess } from './server-process.js'

// Two API processes (the built server, as it is deployed) over one PostgreSQL database: a
// client walks a session page by page, alternating between them, while a writer appends events;
// then one process is killed in the middle of a walk and the client carries on with the other.
// Nothing in a process may matter: every event must come exactly once, in order.

const target = (await networkPostgres())!
console.log(`scale-out: two API processes over ${target.kind}`)

interface Server {
  child: ChildProcess
  url: string
  exited: Promise<number | null>
}

async function startServer(databaseUrl: string): Promise<Server> {
  const { child, url, exited } = await startServerProcess(
    { SEED: 'false', DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: '3', RATE_LIMIT_PER_MINUTE: 'off' },
    { timeoutMs: 30_000 },
  )
  return { child, url, exited }
}

describe(`two API processes over one PostgreSQL database (${backend})`, () => {
  let store: SqlStore
  let summary: SeedSummary
  let sessionId: string
  let runIds: string[]
  let servers: Server[]

  beforeAll(async () => {
    store = await openStore(target.url)
    summary = await seed(store, { sessions: 1, events: 120 })
    sessionId = summary.instances[0]!.sessions[0]!.id
    runIds = (await sessionRuns(store, sessionId)).map((r) => r.id)
    // Both start at once over the migrated schema; each migrates (nothing to do) under the lock.
    servers = await Promise.all([startServer(target.url), startServer(target.url)])
  })
  afterAll(async () => {
    for (const s of servers ?? []) s.child.kill('SIGKILL')
    await store?.close()
  })

  const headers = () => ({ Authorization: `Bearer ${summary.instances[0]!.secret_key}` })

  /** One page from the first server that answers, in the order given: a client that retries elsewhere. */
  async function page(bases: string[], query: string) {
    let lastError: unknown
    for (const base of bases) {
      try {
        const res = await fetch(`${base}/sessions/${sessionId}/events?${query}`, {
          headers: headers(),
          signal: AbortSignal.timeout(10_000),
        })
        if (res.status === 503) continue
        expect(res.status).toBe(200)
        return (await res.json()) as {
          items: { id: string }[]
          pagination: { has_more_after: boolean; next_cursor: string | null }
        }
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  it('alternating between them while a writer appends: every event exactly once, in order', async () => {
    const [a, b] = servers as [Server, Server]
    let writing = true
    let written = 0
    let caughtUp = 0
    const writer = (async () => {
      // A steady trickle of appends, as ingestion would write them, until the walk has reached
      // the newest events a few times (however fast this machine walks).
      for (let i = 0; i < 40 || (caughtUp < 3 && i < 1000); i++) {
        await store.seeding.appendLogEvents(
          [0, 1, 2].map((k) => ({
            serverRunId: runIds[(i + k) % runIds.length]!,
            lines: [{ type: 'stdout' as const, line: `live ${i}.${k}` }],
          })),
        )
        written += 3
        await new Promise((r) => setTimeout(r, 15))
      }
      writing = false
    })()

    const seen: string[] = []
    const servedBy = { [a.url]: 0, [b.url]: 0 }
    let next = ''
    for (let n = 0; n < 1000; n++) {
      const base = n % 2 === 0 ? a.url : b.url
      const done = !writing
      const p = await page([base], `limit=7${next}`)
      servedBy[base]! += 1
      seen.push(...p.items.map((i) => i.id))
      if (p.pagination.has_more_after) {
        next = `&cursor=${p.pagination.next_cursor}`
        continue
      }
      // At the end of the list for now. Once the writer had stopped before this page was
      // asked for, this is the end; until then, wait a little and ask for what came after.
      if (done) break
      caughtUp += 1
      next = `&after=${seen.at(-1)}`
      await new Promise((r) => setTimeout(r, 20))
    }
    await writer

    const all = await eventIds(store, sessionId)
    expect(written).toBeGreaterThanOrEqual(120)
    expect(all.length).toBe(summary.instances[0]!.sessions[0]!.events + written)
    expect(seen).toEqual(all)
    expect(servedBy[a.url]).toBeGreaterThan(3)
    expect(servedBy[b.url]).toBeGreaterThan(3)
    // The walk did reach the newest events while they were still being written.
    expect(caughtUp).toBeGreaterThan(0)
  })

  it('writers through both processes at once, a reader walking meanwhile: every event exactly once, in id order, none missed', async () => {
    const [a, b] = servers as [Server, Server]
    const post = async (base: string, path: string, body: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { ...headers(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
      expect(res.status).toBeLessThan(300)
      return (await res.json()) as { id: string }
    }
    const session = await post(a.url, '/sessions', {})
    const runs = await Promise.all(
      [a.url, b.url].map((base) =>
        post(base, `/sessions/${session.id}/server-runs`, { type: 'external', server: { name: `writer on ${base}` } }),
      ),
    )
    // Four writers, two through each process, each appending its own numbered lines as fast as
    // they are answered: the transactions of the two processes interleave and commit out of
    // the order they started in.
    let writing = 4
    const written: string[] = []
    const writers = [a.url, b.url, a.url, b.url].map(async (base, w) => {
      for (let i = 0; i < 40; i++) {
        const event = await post(base, `/sessions/${session.id}/events`, {
          server_run_id: runs[w % 2]!.id,
          log_lines: [{ type: 'stdout', line: `writer ${w} line ${i}` }],
        })
        written.push(event.id)
      }
      writing -= 1
    })
    // A reader that pages with `after` the last id it saw, as a follower would, alternating
    // between the processes, until the writers are done and it has caught up.
    const seen: string[] = []
    for (let n = 0; n < 5000; n++) {
      const done = writing === 0
      const base = n % 2 === 0 ? a.url : b.url
      const res = await fetch(
        `${base}/sessions/${session.id}/events?limit=10${seen.length ? `&after=${seen.at(-1)}` : ''}`,
        { headers: headers() },
      )
      const p = (await res.json()) as { items: { id: string }[]; pagination: { has_more_after: boolean } }
      seen.push(...p.items.map((i) => i.id))
      if (!p.pagination.has_more_after && done) break
      if (!p.pagination.has_more_after) await new Promise((r) => setTimeout(r, 5))
    }
    await Promise.all(writers)
    const all = await eventIds(store, session.id)
    expect(all).toHaveLength(160)
    expect([...written].sort()).toEqual(all)
    // Had an id been committed behind one the reader had already passed, it would be missing here.
    expect(seen).toEqual(all)
  })

  it('one process killed in the middle of a walk: the client goes on with the other and loses nothing', async () => {
    const [a, b] = servers as [Server, Server]
    const all = await eventIds(store, sessionId)
    const seen: string[] = []
    let cursor: string | null = null
    for (let n = 0; n < 1000; n++) {
      if (n === 5) {
        a.child.kill('SIGKILL')
        await a.exited
      }
      // Alternate, and when the chosen one does not answer, retry the same page on the other.
      const order = n % 2 === 0 ? [a.url, b.url] : [b.url, a.url]
      const p = await page(order, `limit=9&order=desc${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...p.items.map((i) => i.id))
      if (!p.pagination.has_more_after) break
      cursor = p.pagination.next_cursor
    }
    expect(seen).toEqual([...all].reverse())
    expect(a.child.exitCode ?? a.child.signalCode).toBe('SIGKILL')
    // The survivor is still well.
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200)
  })
})
