import { beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import type { StoreReader } from '../src/store/types.js'
import { backend } from './backend.js'
import { eventIds, fixture, sessionRuns, silent, testSettings, type Fixture } from './helpers.js'
import { messages } from './sse.js'
import { overriding } from './store-overrides.js'

// The shared read of the live tail (live-sessions.ts), through the real app: followers at the
// head of a session share one read per wake-up; one that joins late, resumes from an old id,
// stops reading while writers run, or reconnects reads on its own and joins again; every one of
// them gets every event after where it started, once, in order.

let f: Fixture
let sessionId: string
let runId: string
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 20 })
  sessionId = f.a.sessions[0]!.id
  runId = (await sessionRuns(f.store, sessionId)).find((r) => r.status === 'active')!.id
})

const auth = () => ({ Authorization: `Bearer ${f.a.secret_key}` })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The app over the store, counting the pages of ids it reads. */
function countingApp() {
  const counted = { pages: 0 }
  const store = overriding(f.store, {
    reader: {
      listEventIds: async (query: Parameters<StoreReader['listEventIds']>[0]) => {
        counted.pages += 1
        return f.store.reader.listEventIds(query)
      },
    } satisfies Partial<StoreReader>,
  })
  const app = createApp({ store, logger: silent, config: { ...testSettings, streamsPerKey: 1_000 } })
  return { app, counted }
}

describe(`the shared read of followers (${backend})`, () => {
  it('serves followers at the head with one read per wake-up, not one each', async () => {
    const { app, counted } = countingApp()
    const followers = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const sse = messages(await app.request(`/sessions/${sessionId}/events/stream`, { headers: auth() }))
        expect(await sse.next()).toEqual({ retry: '2000' })
        // Read on (nothing comes): the stream reads once on its own, then joins the shared read.
        expect(await sse.next(100)).toBeUndefined()
        return sse
      }),
    )
    await sleep(100)
    const before = counted.pages
    const written: string[] = []
    for (let i = 0; i < 10; i++) {
      written.push(
        ...(await f.store.seeding.appendLogEvents([
          { serverRunId: runId, lines: [{ type: 'stdout', line: `s${i}` }] },
        ])),
      )
      for (const sse of followers) expect((await sse.events(1)).map((e) => e.id)).toEqual(written.slice(-1))
    }
    // 10 appends, 40 followers: one read per wake-up, not 400 (on PostgreSQL an append wakes twice: at
    // its commit in this process, and by its NOTIFY).
    expect(counted.pages - before).toBeLessThanOrEqual(24)
    for (const sse of followers) await sse.cancel()
  })

  it('loses and repeats nothing for followers that join, fall behind, catch up and reconnect while writers run', async () => {
    const { app } = countingApp()
    const start = (await eventIds(f.store, sessionId)).at(-1)!
    const open = async (after: string) => {
      const sse = messages(
        await app.request(`/sessions/${sessionId}/events/stream`, { headers: { ...auth(), 'Last-Event-ID': after } }),
      )
      expect(await sse.next()).toEqual({ retry: '2000' })
      return sse
    }
    // Two writers append at once, in batches and one by one.
    /** The last event written, once the writers are done: each follower reads until it has it. */
    let lastWritten: string | undefined
    const writers = [0, 1].map(async (w) => {
      for (let i = 0; i < 40; i++) {
        const size = i % 5 === 0 ? 120 : 1
        await f.store.seeding.appendLogEvents(
          Array.from({ length: size }, (_, j) => ({
            serverRunId: runId,
            lines: [{ type: 'stdout' as const, line: `w${w} ${i}.${j}` }],
          })),
        )
        await sleep(i % 3 === 0 ? 15 : 2)
      }
    })
    const done = Promise.all(writers).then(async () => {
      lastWritten = (await eventIds(f.store, sessionId)).at(-1)
    })

    /** Reads every event as it comes, reconnecting with its last id now and then when `reconnect`. */
    const follow = async (options: { joinAfterMs: number; from: string; stallMs?: number; reconnect?: boolean }) => {
      await sleep(options.joinAfterMs)
      const seen: string[] = []
      let last = options.from
      let sse = await open(last)
      let heardAt = Date.now()
      for (let round = 0; ; round++) {
        if (options.stallMs && round === 3) await sleep(options.stallMs) // a slow consumer: reads nothing a while
        if (options.reconnect && round % 4 === 3) {
          await sse.cancel()
          sse = await open(last)
        }
        if (lastWritten !== undefined && last >= lastWritten) break
        const m = await sse.next(1_000)
        if (!m) {
          // Nothing for 10 s while events are still to come: lost, and the test fails below.
          if (Date.now() - heardAt > 10_000) break
          continue
        }
        heardAt = Date.now()
        if (!m.id) continue
        seen.push(m.id)
        last = m.id
      }
      await sse.cancel()
      return seen
    }
    const all = await eventIds(f.store, sessionId)
    const old = all[Math.max(0, all.length - 15)]!
    const results = await Promise.all([
      follow({ joinAfterMs: 0, from: start }),
      follow({ joinAfterMs: 0, from: start, stallMs: 300 }),
      follow({ joinAfterMs: 50, from: start }),
      follow({ joinAfterMs: 120, from: old }), // resumes from an old id
      follow({ joinAfterMs: 10, from: start, reconnect: true }),
      follow({ joinAfterMs: 30, from: start, stallMs: 150, reconnect: true }),
    ])
    await done
    const written = await eventIds(f.store, sessionId)
    for (const [i, seen] of results.entries()) {
      const from = i === 3 ? old : start
      expect(seen, `follower ${i}`).toEqual(written.filter((id) => id > from))
    }
  }, 60_000)

  it('followers with other filters read their own shared read, each its own events', async () => {
    const { app } = countingApp()
    const open = async (query: string) => {
      const sse = messages(await app.request(`/sessions/${sessionId}/events/stream${query}`, { headers: auth() }))
      expect(await sse.next()).toEqual({ retry: '2000' })
      return sse
    }
    const mine = await open(`?server_run_id=${runId}`)
    const logs = await open('?type=server_logs')
    const errorsOnly = await open('?type=server_run_error')
    const [id] = await f.store.seeding.appendLogEvents([{ serverRunId: runId, lines: [{ type: 'stdout', line: 'f' }] }])
    expect((await mine.events(1)).map((e) => e.id)).toEqual([id])
    expect((await logs.events(1)).map((e) => e.id)).toEqual([id])
    expect(await errorsOnly.next(200)).toBeUndefined()
    for (const sse of [mine, logs, errorsOnly]) await sse.cancel()
  })
})
