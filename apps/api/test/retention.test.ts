import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { DAY_MS, eventPartitions } from '../src/store/retention-partitions.js'
import { Lease, LeaseLostError, TTL_MS } from '../src/store/prune-lease.js'
import { PRUNE_EVERY_MS, schedulePruning } from '../src/store/prune-schedule.js'
import { prune, type PruneResult } from '../src/store/prune.js'
import { formatRetention, parseRetention, setInstanceRetention } from '../src/store/retention.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, onPostgres, openTestStore, schemaOf } from './backend.js'
import { eventIds, instanceWith, ONE_LINE, silent, testSettings, withoutRequestId } from './helpers.js'
import { messages } from './sse.js'

// Retention (issue 19): events older than their instance's retention go, sessions left empty and
// idle go with their runs, and nothing younger is ever removed, whatever is written meanwhile.
// The clock is the test's: events are written at the times given, and the prune runs "now" as
// the test says.

const HOUR = 3_600_000

/** `n` events of a run at `at`, a millisecond apart; their ids. */
async function eventsAt(store: SqlStore, runId: string, at: number, n: number): Promise<string[]> {
  return store.seeding.appendLogEvents(
    Array.from({ length: n }, (_, i) => ({ serverRunId: runId, lines: ONE_LINE, at: new Date(at + i) })),
  )
}

const count = async (store: SqlStore, table: 'sessions' | 'server_runs' | 'server_sessions' | 'session_events') =>
  Number(
    (
      await store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )

describe('EVENT_RETENTION and an instance’s own: durations', () => {
  it('reads 30d, 12h, 90m, 45s and off, and says what it wants of anything else', () => {
    expect(parseRetention('30d')).toBe(30 * DAY_MS)
    expect(parseRetention('12h')).toBe(12 * HOUR)
    expect(parseRetention('90m')).toBe(90 * 60_000)
    expect(parseRetention('45s')).toBe(45_000)
    expect(parseRetention('off')).toBe(Infinity)
    for (const bad of ['', '30', '30 days', '0s', '-1d', '1.5h', '1w', 'never', '99999999d'])
      expect(() => parseRetention(bad), bad).toThrow(/duration such as 30d, 12h, 90m or 45s/)
    for (const text of ['30d', '12h', '90m', '45s', 'off']) expect(formatRetention(parseRetention(text))).toBe(text)
    expect(formatRetention(48 * HOUR)).toBe('2d')
  })
})

describe(`a prune (${backend})`, () => {
  let store: SqlStore
  const now = Date.now()
  const at = (ms: number) => new Date(now + ms)

  beforeAll(async () => {
    store = await openTestStore()
  })

  it("removes the events older than their instance's retention, and none younger, while writers append", async () => {
    const a = await instanceWith(store, 'A (EVENT_RETENTION, 30d)', at(-60 * DAY_MS))
    const b = await instanceWith(store, 'B (7d)', at(-60 * DAY_MS))
    const c = await instanceWith(store, 'C (off)', at(-60 * DAY_MS))
    expect(await setInstanceRetention(store.db, b.instanceId, parseRetention('7d'))).toBe(true)
    expect(await setInstanceRetention(store.db, c.instanceId, Infinity)).toBe(true)

    type Written = { sessionId: string; runId: string; old: string[]; week: string[]; recent: string[] }
    const sessions: Written[] = []
    for (const instance of [a, b, c]) {
      const s = await instance.session(at(-50 * DAY_MS))
      const old = await eventsAt(store, s.runId, now - 40 * DAY_MS, 30)
      const week = await eventsAt(store, s.runId, now - 10 * DAY_MS, 30)
      const recent = await eventsAt(store, s.runId, now - DAY_MS, 30)
      sessions.push({ ...s, old, week, recent })
    }
    const [sa, sb, sc] = sessions as [Written, Written, Written]

    // Writers append to every session, through the API's writer, for as long as the prune runs.
    let pruning = true
    const written: Record<string, string[]> = { [sa.sessionId]: [], [sb.sessionId]: [], [sc.sessionId]: [] }
    const writer = async (s: Written) => {
      let i = 0
      do {
        const appended = await store.writer.appendEvent({
          sessionId: s.sessionId,
          serverRunId: s.runId,
          lines: ONE_LINE,
          at: new Date(now + ++i),
        })
        written[s.sessionId]!.push(appended.event.id)
        // Each append a request of its own, as over HTTP: others (the prune) get their turn between.
        await new Promise((resolve) => setImmediate(resolve))
      } while (pruning || i < 5)
    }
    const writers = sessions.map(writer)
    const result = await prune(store, { defaultRetentionMs: parseRetention('30d'), now: at(0) }).finally(() => {
      pruning = false
    })
    await Promise.all(writers)

    expect(result.events_deleted).toBe(30 + 60)
    expect(result.sessions_deleted).toBe(0)
    expect(await eventIds(store, sa.sessionId)).toEqual([...sa.week, ...sa.recent, ...written[sa.sessionId]!])
    expect(await eventIds(store, sb.sessionId)).toEqual([...sb.recent, ...written[sb.sessionId]!])
    expect(await eventIds(store, sc.sessionId)).toEqual([
      ...sc.old,
      ...sc.week,
      ...sc.recent,
      ...written[sc.sessionId]!,
    ])

    // A second prune at the same time finds nothing more.
    expect(await prune(store, { defaultRetentionMs: parseRetention('30d'), now: at(0) })).toEqual({
      events_deleted: 0,
      sessions_deleted: 0,
      idempotency_keys_deleted: 0,
    } satisfies PruneResult)
  })

  it('removes a session only once it has no events left and nothing happened in it within the retention', async () => {
    const a = await instanceWith(store, 'sessions', at(-60 * DAY_MS))
    const gone = await a.session(at(-41 * DAY_MS))
    await eventsAt(store, gone.runId, now - 40 * DAY_MS, 10)
    const runStoppedLately = await a.session(at(-41 * DAY_MS))
    await eventsAt(store, runStoppedLately.runId, now - 40 * DAY_MS, 10)
    await store.seeding.updateServerRun(runStoppedLately.runId, {
      status: 'completed',
      stoppedAt: at(-DAY_MS),
      at: at(-DAY_MS),
    })
    const emptyOld = await a.session(at(-41 * DAY_MS))
    const emptyYoung = await a.session(at(-DAY_MS))
    const stillWritten = await a.session(at(-41 * DAY_MS))
    const kept = await eventsAt(store, stillWritten.runId, now - HOUR, 3)

    // The API has read the session before: it keeps which instance it is of for keyCacheMs.
    const app = createApp({ store, logger: silent, config: { ...testSettings, keyCacheMs: 100 } })
    const get = (path: string) => app.request(path, { headers: { Authorization: `Bearer ${a.secret}` } })
    expect((await get(`/sessions/${gone.sessionId}/events`)).status).toBe(200)
    // One that keeps it for a minute, for the writes below.
    const remembering = createApp({ store, logger: silent, config: { ...testSettings, keyCacheMs: 60_000 } })
    const asA = { Authorization: `Bearer ${a.secret}` }
    expect((await remembering.request(`/sessions/${gone.sessionId}/events`, { headers: asA })).status).toBe(200)

    const before = { sessions: await count(store, 'sessions'), runs: await count(store, 'server_runs') }
    const result = await prune(store, { defaultRetentionMs: parseRetention('30d'), now: at(0) })
    expect(result).toMatchObject({ events_deleted: 20, sessions_deleted: 2 })
    expect(await count(store, 'sessions')).toBe(before.sessions - 2)
    expect(await count(store, 'server_runs')).toBe(before.runs - 2)

    const remaining = new Set(
      (await store.db.selectFrom('sessions').select('id').where('instance_id', '=', a.instanceId).execute()).map(
        (r) => r.id,
      ),
    )
    expect(remaining.has(gone.sessionId)).toBe(false)
    expect(remaining.has(emptyOld.sessionId)).toBe(false)
    expect(remaining.has(runStoppedLately.sessionId)).toBe(true)
    expect(await eventIds(store, runStoppedLately.sessionId)).toEqual([])
    expect(remaining.has(emptyYoung.sessionId)).toBe(true)
    expect(await eventIds(store, stillWritten.sessionId)).toEqual(kept)

    // Writes to it while the API's cache still knows it (KEY_CACHE_SECONDS): the store finds it
    // gone, and the answer is the 404 of a session that never was, not a 400, 409 or 500.
    const notFound = withoutRequestId(await (await get('/sessions/ses_0000000000000000000000/events')).text())
    const post = (path: string, json: unknown) =>
      remembering.request(path, {
        method: 'POST',
        headers: { ...asA, 'Content-Type': 'application/json' },
        body: JSON.stringify(json),
      })
    for (const [path, json] of [
      [`/sessions/${gone.sessionId}/events`, { server_run_id: gone.runId, log_lines: ONE_LINE }],
      [`/sessions/${gone.sessionId}/server-runs`, { type: 'external', server: { name: 'late' } }],
    ] as const) {
      const res = await post(path, json)
      expect(res.status, path).toBe(404)
      expect(withoutRequestId(await res.text()), path).toBe(notFound)
    }

    // A removed session is one that never was: 404, as for an unknown id, once the API's cache
    // lets it go (KEY_CACHE_SECONDS).
    await new Promise((resolve) => setTimeout(resolve, 130))
    const unknown = await get('/sessions/ses_0000000000000000000000/events')
    expect(unknown.status).toBe(404)
    const removed = await get(`/sessions/${gone.sessionId}/events`)
    expect(removed.status).toBe(404)
    expect(withoutRequestId(await removed.text())).toBe(withoutRequestId(await unknown.text()))
    expect((await get(`/sessions/${emptyYoung.sessionId}/events`)).status).toBe(200)
  })

  it("an instance's retention touches nothing of another instance; --older-than removes what is older, whatever the retention", async () => {
    const short = await instanceWith(store, 'short', at(-60 * DAY_MS))
    const other = await instanceWith(store, 'other', at(-60 * DAY_MS))
    await setInstanceRetention(store.db, short.instanceId, parseRetention('12h'))
    const s1 = await short.session(at(-3 * DAY_MS))
    const s2 = await other.session(at(-3 * DAY_MS))
    const shortOld = await eventsAt(store, s1.runId, now - 2 * DAY_MS, 5)
    const shortYoung = await eventsAt(store, s1.runId, now - HOUR, 5)
    const otherOld = await eventsAt(store, s2.runId, now - 2 * DAY_MS, 5)
    const result = await prune(store, { defaultRetentionMs: parseRetention('30d'), now: at(0) })
    expect(result.events_deleted).toBe(shortOld.length)
    expect(await eventIds(store, s1.sessionId)).toEqual(shortYoung)
    expect(await eventIds(store, s2.sessionId)).toEqual(otherOld)

    // Back to EVENT_RETENTION; then a prune of everything older than a day.
    await setInstanceRetention(store.db, short.instanceId, null)
    const forced = await prune(store, { defaultRetentionMs: parseRetention('30d'), olderThanMs: DAY_MS, now: at(0) })
    expect(forced.events_deleted).toBeGreaterThanOrEqual(otherOld.length)
    expect(await eventIds(store, s2.sessionId)).toEqual([])
    expect(await eventIds(store, s1.sessionId)).toEqual(shortYoung)
  })

  it('off keeps everything', async () => {
    const a = await instanceWith(store, 'off', at(-60 * DAY_MS))
    const s = await a.session(at(-50 * DAY_MS))
    const old = await eventsAt(store, s.runId, now - 45 * DAY_MS, 5)
    const result = await prune(store, { defaultRetentionMs: Infinity, now: at(0) })
    expect(result.events_deleted).toBe(0)
    expect(await eventIds(store, s.sessionId)).toEqual(old)
  })
})

describe(`reads at the edge of retention (${backend})`, () => {
  let store: SqlStore
  let app: ReturnType<typeof createApp>
  let key: string
  let sessionId: string
  let expired: string[]
  let live: string[]
  const now = Date.now()

  beforeAll(async () => {
    store = await openTestStore()
    const a = await instanceWith(store, 'edge', new Date(now - 60 * DAY_MS))
    key = a.secret
    const s = await a.session(new Date(now - 50 * DAY_MS))
    sessionId = s.sessionId
    expired = await eventsAt(store, s.runId, now - 40 * DAY_MS, 10)
    live = await eventsAt(store, s.runId, now - DAY_MS, 10)
    app = createApp({ store, logger: silent, config: testSettings })
  })

  const auth = () => ({ Authorization: `Bearer ${key}` })

  it('a reader read the first events; then they expire', async () => {
    const first = await app.request(`/sessions/${sessionId}/events?limit=5`, { headers: auth() })
    expect(((await first.json()) as { items: { id: string }[] }).items.map((e) => e.id)).toEqual(expired.slice(0, 5))
    await prune(store, { defaultRetentionMs: parseRetention('30d'), now: new Date(now) })
    expect(await eventIds(store, sessionId)).toEqual(live)
  })
  const page = async (query: string) => {
    const response = await app.request(`/sessions/${sessionId}/events?${query}`, { headers: auth() })
    expect(response.status, query).toBe(200)
    return (await response.json()) as { items: { id: string }[]; pagination: { next_cursor: string | null } }
  }

  it('after= an expired event continues with the first live event after it', async () => {
    expect((await page(`after=${expired[3]}&limit=3`)).items.map((e) => e.id)).toEqual(live.slice(0, 3))
  })

  it('before= an expired event finds nothing before it, and says there is more after', async () => {
    const response = await app.request(`/sessions/${sessionId}/events?before=${expired[5]}&limit=3`, {
      headers: auth(),
    })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { items: unknown[]; pagination: Record<string, unknown> }
    expect(body.items).toEqual([])
    expect(body.pagination).toMatchObject({ has_more_before: false, has_more_after: true })
  })

  it('a cursor that names an expired event continues the same way', async () => {
    const first = await page(`limit=3`)
    // A cursor made before the prune: Metorial's format, ["after", id].
    const { encodeCursor } = await import('../src/cursor.js')
    const cursor = encodeCursor({ direction: 'after', id: expired[5]! })
    expect((await page(`cursor=${cursor}&limit=3`)).items.map((e) => e.id)).toEqual(live.slice(0, 3))
    expect(first.items.map((e) => e.id)).toEqual(live.slice(0, 3))
  })

  it('a tail resumed with an expired Last-Event-ID sends the live events after it, from the first', async () => {
    const controller = new AbortController()
    const response = await app.request(`/sessions/${sessionId}/events/stream`, {
      headers: { ...auth(), 'Last-Event-ID': expired[9]! },
      signal: controller.signal,
    })
    expect(response.status).toBe(200)
    const stream = messages(response)
    const sent = await stream.events(live.length)
    await stream.cancel()
    controller.abort()
    expect(sent.map((e) => e.id)).toEqual(live)
  })
})

describe.runIf(onPostgres)(`PostgreSQL: partitions dropped whole (${backend})`, () => {
  let store: SqlStore

  beforeAll(async () => {
    store = await openTestStore()
  })

  it('drops the partitions past the longest retention in force; the events of a shorter one go in batches', async () => {
    const day = Math.floor(Date.now() / DAY_MS) * DAY_MS
    const a = await instanceWith(store, 'A (30d)', new Date(day))
    const b = await instanceWith(store, 'B (7d)', new Date(day))
    await setInstanceRetention(store.db, b.instanceId, parseRetention('7d'))
    const sa = await a.session(new Date(day))
    const sb = await b.session(new Date(day))
    // Events of today (a partition of the grid) in both instances.
    const aToday = await eventsAt(store, sa.runId, day + HOUR, 20)
    const bToday = await eventsAt(store, sb.runId, day + HOUR, 20)
    const today = (await eventPartitions(store.db))!.find((p) => p.fromMs === day)!
    expect(today, 'the partition of today').toBeDefined()

    // Ten days on: B's events are past 7 days and go, in batches; A's stay.
    const tenDays = await prune(store, { defaultRetentionMs: parseRetention('30d'), now: new Date(day + 10 * DAY_MS) })
    expect(tenDays.events_deleted).toBe(bToday.length)
    expect(await eventIds(store, sb.sessionId)).toEqual([])
    expect(await eventIds(store, sa.sessionId)).toEqual(aToday)

    // 30 days and 2 hours on, A's events are expired, but their partition still holds a younger
    // hour of the day: they wait for it, at most a day.
    const waiting = await prune(store, {
      defaultRetentionMs: parseRetention('30d'),
      now: new Date(day + 30 * DAY_MS + 2 * HOUR),
    })
    expect(waiting.events_deleted).toBe(0)
    expect(await eventIds(store, sa.sessionId)).toEqual(aToday)

    // Writers append at the new "now" while the partition of that day is dropped.
    const later = day + 31 * DAY_MS + HOUR
    const sLater = await a.session(new Date(later - HOUR))
    let pruning = true
    const written: string[] = []
    const writing = (async () => {
      let i = 0
      do {
        const appended = await store.writer.appendEvent({
          sessionId: sLater.sessionId,
          serverRunId: sLater.runId,
          lines: ONE_LINE,
          at: new Date(later + ++i),
        })
        written.push(appended.event.id)
        // Each append a request of its own, as over HTTP: others (the prune) get their turn between.
        await new Promise((resolve) => setImmediate(resolve))
      } while (pruning || i < 5)
    })()
    const dropped = await prune(store, { defaultRetentionMs: parseRetention('30d'), now: new Date(later) }).finally(
      () => (pruning = false),
    )
    await writing
    expect(dropped.events_deleted).toBe(aToday.length)
    expect(dropped.sessions_deleted).toBe(1)
    const partitions = (await eventPartitions(store.db))!
    expect(partitions.some((p) => p.name === today.name)).toBe(false)
    expect(await eventIds(store, sLater.sessionId)).toEqual(written)
    // The first partition is always there for an old id, and the days ahead of "now" are made.
    expect(partitions[0]!.fromMs).toBe(-Infinity)
    expect(partitions.at(-1)!.toMs).toBeGreaterThanOrEqual(later + DAY_MS)
  })

  it('the events of the default retention in a partition a longer one keeps go a range of pages at a time, every one of them', async () => {
    const fresh = await openTestStore()
    const day = Math.floor(Date.now() / DAY_MS) * DAY_MS
    const a = await instanceWith(fresh, 'A (30d)', new Date(day - 20 * DAY_MS))
    const b = await instanceWith(fresh, 'B (EVENT_RETENTION, 7d)', new Date(day - 20 * DAY_MS))
    await setInstanceRetention(fresh.db, a.instanceId, parseRetention('30d'))
    const sa = await a.session(new Date(day - 20 * DAY_MS))
    const sb = await b.session(new Date(day - 20 * DAY_MS))
    // Ten days old, in the first partition (everything before today's), which A's retention
    // keeps: more pages than one delete walks (prune-events.ts), the two instances taking turns
    // of a thousand events.
    const aOld: string[] = []
    const bOld: string[] = []
    for (let i = 0; i < 6; i++) {
      aOld.push(...(await eventsAt(fresh, sa.runId, day - 10 * DAY_MS + i * 2000, 1000)))
      bOld.push(...(await eventsAt(fresh, sb.runId, day - 10 * DAY_MS + i * 2000 + 1000, 1000)))
    }
    // A younger event keeps B's session: its old events go by the walk, not with the session.
    const bRecent = await eventsAt(fresh, sb.runId, day - DAY_MS, 1)
    const { rows } = await sql<{ pages: number }>`
      select (pg_relation_size('session_events_p0') / current_setting('block_size')::int)::int as pages`.execute(
      fresh.db,
    )
    expect(rows[0]!.pages).toBeGreaterThan(256)

    const pruned = await prune(fresh, { defaultRetentionMs: parseRetention('7d'), now: new Date(day + HOUR) })
    expect(pruned.events_deleted).toBe(bOld.length)
    expect(pruned.sessions_deleted).toBe(0)
    expect(await eventIds(fresh, sb.sessionId)).toEqual(bRecent)
    expect(await eventIds(fresh, sa.sessionId)).toEqual(aOld)
  })

  it('a pruner that died half-way: the next one finishes a pending detach and drops a detached partition', async () => {
    const own = await openTestStore()
    const day = Math.floor(Date.now() / DAY_MS) * DAY_MS
    const a = await instanceWith(own, 'died', new Date(day))
    const s = await a.session(new Date(day))
    const today = await eventsAt(own, s.runId, day + HOUR, 10)
    const tomorrow = await eventsAt(own, s.runId, day + DAY_MS + HOUR, 10)
    const partitions = (await eventPartitions(own.db))!
    const [p1, p2] = [day, day + DAY_MS].map((from) => partitions.find((p) => p.fromMs === from)!)
    // Died after detaching today's partition, before dropping it.
    await sql`alter table session_events detach partition ${sql.table(p1!.name)}`.execute(own.db)
    if (backend === 'postgres') {
      // Died while detaching tomorrow's concurrently: a reader's transaction holds it back, and
      // the detach is cancelled half-way, as a killed process would leave it.
      await own.db.connection().execute(async (reader) => {
        await sql`begin`.execute(reader)
        await sql`select count(*) from session_events`.execute(reader)
        await own.db.connection().execute(async (pruner) => {
          await sql`set statement_timeout = 500`.execute(pruner)
          await expect(
            sql`alter table session_events detach partition ${sql.table(p2!.name)} concurrently`.execute(pruner),
          ).rejects.toThrow(/statement timeout|canceling/)
          await sql`reset statement_timeout`.execute(pruner)
        })
        await sql`rollback`.execute(reader)
      })
      expect((await eventPartitions(own.db))!.find((p) => p.name === p2!.name)?.detaching).toBe(true)
    }
    expect(await eventIds(own, s.sessionId)).toEqual(backend === 'postgres' ? [] : tomorrow)

    const result = await prune(own, { defaultRetentionMs: parseRetention('30d'), now: new Date(day + 33 * DAY_MS) })
    expect(result.events_deleted).toBe(today.length + tomorrow.length)
    const left = (await eventPartitions(own.db))!.map((p) => p.name)
    expect(left).not.toContain(p1!.name)
    expect(left).not.toContain(p2!.name)
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_class
       where relnamespace = current_schema()::regnamespace and relname in (${p1!.name}, ${p2!.name})`.execute(own.db)
    expect(rows[0]!.n).toBe(0)
  })
})

describe(`one pruner at a time (${backend})`, () => {
  it('a lease: one holder at a time; one that stops renewing hands over once its time is out', async () => {
    const store = await openTestStore()
    // On PostgreSQL a second store over the same schema stands for another process.
    const other = onPostgres ? await openTestStore({ schema: await schemaOf(store) }) : store
    let clock = Date.now()
    const now = () => new Date(clock)
    const a = new Lease(store.db, { holder: 'a', now })
    const b = new Lease(other.db, { holder: 'b', now })
    expect(await a.take()).toBe(true)
    expect(await b.take()).toBe(false)
    expect(await a.take()).toBe(true) // its own
    clock += TTL_MS - 1_000
    await a.renew()
    clock += TTL_MS - 1_000
    expect(await b.take()).toBe(false)
    // a dies: it renews no more.
    clock += 2_000
    expect(await b.take()).toBe(true)
    await expect(a.renew()).rejects.toThrow(LeaseLostError)
    await b.give({ ran: true })
    expect(await a.take({ unlessRanWithinMs: PRUNE_EVERY_MS })).toBe(false)
    clock += PRUNE_EVERY_MS
    expect(await a.take({ unlessRanWithinMs: PRUNE_EVERY_MS })).toBe(true)
    expect((await a.state())?.holder).toBe('a')
  })

  it('two schedules over one database: one prunes, once per period; when its pruner dies, the other takes over', async () => {
    const store = await openTestStore()
    const other = onPostgres ? await openTestStore({ schema: await schemaOf(store) }) : store
    let clock = Date.now()
    const now = () => new Date(clock)
    const options = { defaultRetentionMs: parseRetention('30d'), now, firstLookMs: 3_600_000, lookEveryMs: 3_600_000 }
    const one = schedulePruning({ ...options, store, holder: 'one' })
    const two = schedulePruning({ ...options, store: other, holder: 'two' })
    try {
      const a = await instanceWith(store, 'scheduled', new Date(clock - 60 * DAY_MS))
      const s = await a.session(new Date(clock - 50 * DAY_MS))
      await eventsAt(store, s.runId, clock - 40 * DAY_MS, 7)

      const first = await Promise.all([one.look(), two.look()])
      expect(first.filter((r) => r !== undefined)).toEqual([
        { events_deleted: 7, sessions_deleted: 1, idempotency_keys_deleted: 0 },
      ])
      // Not again before the period is over, by either.
      expect(await Promise.all([one.look(), two.look()])).toEqual([undefined, undefined])
      clock += PRUNE_EVERY_MS
      expect((await Promise.all([one.look(), two.look()])).filter((r) => r !== undefined)).toHaveLength(1)

      // A pruner takes the lease and dies with it: the others wait for its time to run out.
      clock += PRUNE_EVERY_MS
      expect(await new Lease(store.db, { holder: 'dead', now }).take()).toBe(true)
      expect(await Promise.all([one.look(), two.look()])).toEqual([undefined, undefined])
      clock += TTL_MS + 1
      expect((await Promise.all([one.look(), two.look()])).filter((r) => r !== undefined)).toHaveLength(1)
    } finally {
      await one.stop()
      await two.stop()
    }
  })
})
