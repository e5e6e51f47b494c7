import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import { prune } from '../src/store/prune.js'
import { CLOSED_AFTER_MS, COMPACTED, compactClosedPartitions } from '../src/store/retention-compaction.js'
import { DAY_MS, eventPartitions } from '../src/store/retention-partitions.js'
import { parseRetention } from '../src/store/retention.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, onPostgres, openTestStore } from './backend.js'
import { eventIds, instanceWith, ONE_LINE } from './helpers.js'

// The compaction of closed partitions (retention-compaction.ts): once no event can go to a
// partition any more, the pruner rebuilds its indexes full, once, and loses nothing. Events are
// written, interleaved across sessions as the API writes them, into the day of the real clock
// and the day after; the prunes run at the times the test gives, so that the first day is closed
// and the second one is "today".

const HOUR = 3_600_000
const SESSIONS = 8

/** `SESSIONS` sessions of one instance, each with one run. */
async function sessionsWithRuns(store: SqlStore, at: Date) {
  const { session } = await instanceWith(store, 'compaction', at)
  const made: { sessionId: string; runId: string }[] = []
  for (let i = 0; i < SESSIONS; i++) made.push(await session(at))
  return made
}

/** `rounds` rounds of one event in every run, from `from` on, a millisecond apart: appends interleaved as they come. */
async function interleaved(store: SqlStore, runs: { runId: string }[], from: number, rounds: number) {
  const PER_CALL = 50
  for (let round = 0; round < rounds; round += PER_CALL) {
    const events = []
    for (let r = round; r < Math.min(rounds, round + PER_CALL); r++)
      for (const [i, { runId }] of runs.entries())
        events.push({ serverRunId: runId, lines: ONE_LINE, at: new Date(from + r * runs.length + i) })
    await store.seeding.appendLogEvents(events)
  }
}

interface IndexState {
  name: string
  oid: string
  bytes: number
  valid: boolean
  fillfactor: string | null
  comment: string | null
}

/** A partition's indexes as the catalog has them. */
async function indexesOf(store: SqlStore, partition: string): Promise<IndexState[]> {
  const { rows } = await sql<IndexState>`
    select c.relname as name, c.oid::text as oid, pg_relation_size(c.oid)::int as bytes, i.indisvalid as valid,
           (select o from unnest(c.reloptions) o where o like 'fillfactor=%') as fillfactor,
           obj_description(c.oid, 'pg_class') as comment
      from pg_index i join pg_class c on c.oid = i.indexrelid
     where i.indrelid = ${partition}::regclass
     order by c.relname`.execute(store.db)
  return rows
}

const total = (indexes: IndexState[]) => indexes.reduce((sum, index) => sum + index.bytes, 0)

describe.runIf(onPostgres)(`PostgreSQL: closed partitions compacted (${backend})`, () => {
  let store: SqlStore
  let runs: { sessionId: string; runId: string }[]
  const closedDay = Math.floor(Date.now() / DAY_MS) * DAY_MS
  const openDay = closedDay + DAY_MS
  let closed: string
  let open: string
  let closedBefore: IndexState[]
  let openBefore: IndexState[]
  /** What every read returned before any compaction. */
  let readsBefore: unknown

  /** Every event of every session, in order, listed whole and by run, both ways. */
  const reads = async () => ({
    count: Number((await sql<{ n: string }>`select count(*) as n from session_events`.execute(store.db)).rows[0]!.n),
    sessions: await Promise.all(
      runs.map(async ({ sessionId, runId }) => ({
        all: await eventIds(store, sessionId),
        byRun: (await store.reader.listEventIds({ sessionId, limit: 1_000, order: 'asc', serverRunIds: [runId] })).ids,
        newest: (await store.reader.listEventIds({ sessionId, limit: 50, order: 'desc' })).ids,
      })),
    ),
  })

  beforeAll(async () => {
    store = await openTestStore()
    runs = await sessionsWithRuns(store, new Date(closedDay))
    await interleaved(store, runs, closedDay + HOUR, 500)
    await interleaved(store, runs, openDay + HOUR, 20)
    const partitions = (await eventPartitions(store.db))!
    closed = partitions.find((p) => p.fromMs === closedDay)!.name
    open = partitions.find((p) => p.fromMs === openDay)!.name
    closedBefore = await indexesOf(store, closed)
    openBefore = await indexesOf(store, open)
    readsBefore = await reads()
  })

  it('leaves a partition alone within CLOSED_AFTER_MS of its end', async () => {
    const result = await prune(store, {
      defaultRetentionMs: parseRetention('30d'),
      now: new Date(openDay + CLOSED_AFTER_MS - 60_000),
    })
    expect(result).toEqual({ events_deleted: 0, sessions_deleted: 0, idempotency_keys_deleted: 0 })
    expect(await indexesOf(store, closed)).toEqual(closedBefore)
    expect(closedBefore.every((index) => index.fillfactor === null && index.comment === null)).toBe(true)
  })

  it("rebuilds a closed partition's indexes full, once, and loses nothing; the open partition's stay as they are", async () => {
    const result = await prune(store, { defaultRetentionMs: parseRetention('30d'), now: new Date(openDay + 2 * HOUR) })
    // The prune's answer is what it was: compaction adds nothing to it.
    expect(result).toEqual({ events_deleted: 0, sessions_deleted: 0, idempotency_keys_deleted: 0 })

    const after = await indexesOf(store, closed)
    expect(after.map((index) => index.name)).toEqual(closedBefore.map((index) => index.name))
    for (const [i, index] of after.entries()) {
      const before = closedBefore[i]!
      expect(index, index.name).toMatchObject({ valid: true, fillfactor: 'fillfactor=100', comment: COMPACTED })
      // An index with entries is rebuilt (a new relation) and smaller; an empty one (the error
      // events' index: there are none) only marked.
      if (before.bytes > 8192) {
        expect(index.oid, index.name).not.toBe(before.oid)
        expect(index.bytes, index.name).toBeLessThan(before.bytes)
      } else expect(index.oid, index.name).toBe(before.oid)
    }
    expect(closedBefore.filter((index) => index.bytes > 8192).length).toBeGreaterThanOrEqual(3)
    expect(total(after)).toBeLessThan(total(closedBefore) * 0.85)
    console.log(
      `compaction (${backend}): ${SESSIONS * 500} events; the closed partition's indexes, bytes before → after: ${closedBefore
        .map((index, i) => `${index.name} ${index.bytes} → ${after[i]!.bytes}`)
        .join(', ')}; in all ${total(closedBefore)} → ${total(after)}`,
    )

    expect(await indexesOf(store, open)).toEqual(openBefore)
    expect(await reads()).toEqual(readsBefore)

    // Done is in the catalog: the next compaction finds nothing to do, and rebuilds nothing.
    expect(await compactClosedPartitions(store.db, { beforeMs: openDay + 2 * HOUR - CLOSED_AFTER_MS })).toEqual({
      partitions: 0,
      indexes: 0,
      leftovers: 0,
    })
    expect(await indexesOf(store, closed)).toEqual(after)
  })

  it('after a pruner died in a rebuild: drops the invalid copy it left, and rebuilds that index', async () => {
    const compacted = await indexesOf(store, closed)
    const victim = compacted.find((index) => index.name.endsWith('server_run_id_id_idx'))!
    expect(victim, 'the run index of the closed partition').toBeDefined()
    // Its fillfactor set, its rebuild begun, not finished: no comment, and a copy beside it.
    await sql`comment on index ${sql.id(victim.name)} is null`.execute(store.db)
    if (backend === 'postgres') {
      // A REINDEX CONCURRENTLY that waits for a writer of the partition, and is cancelled.
      await store.db.transaction().execute(async (trx) => {
        await sql`lock table ${sql.table(closed)} in row exclusive mode`.execute(trx)
        const reindex = store.db.connection().execute(async (connection) => {
          await sql`set statement_timeout = 300`.execute(connection)
          try {
            await sql`reindex index concurrently ${sql.id(victim.name)}`.execute(connection)
          } finally {
            await sql`reset statement_timeout`.execute(connection)
          }
        })
        await expect(reindex).rejects.toThrow(/statement timeout/)
      })
    } else {
      // PGlite is one session: nothing to wait for, nothing to cancel. A CREATE INDEX CONCURRENTLY
      // that fails leaves the same: an invalid index of that name, attached to nothing.
      const copy = sql.id(`${victim.name}_ccnew`)
      await expect(
        sql`create unique index concurrently ${copy} on ${sql.table(closed)} (session_id)`.execute(store.db),
      ).rejects.toThrow(/could not create unique index/)
    }
    const interrupted = await indexesOf(store, closed)
    const leftover = interrupted.find((index) => !index.valid)!
    expect(leftover.name).toMatch(/_ccnew$/)

    expect(await compactClosedPartitions(store.db, { beforeMs: openDay + 2 * HOUR - CLOSED_AFTER_MS })).toEqual({
      partitions: 1,
      indexes: 1,
      leftovers: 1,
    })
    const after = await indexesOf(store, closed)
    expect(after.map((index) => index.name)).toEqual(compacted.map((index) => index.name))
    for (const [i, index] of after.entries()) {
      expect(index, index.name).toMatchObject({ valid: true, fillfactor: 'fillfactor=100', comment: COMPACTED })
      if (index.name === victim.name) expect(index.oid).not.toBe(victim.oid)
      else expect(index.oid, index.name).toBe(compacted[i]!.oid)
    }
    expect(await reads()).toEqual(readsBefore)
  })

  it.runIf(backend === 'postgres')(
    'a rebuild that outlives its lease is cancelled, not waited for; the next prune does it',
    async () => {
      const compacted = await indexesOf(store, closed)
      const victim = compacted.find((index) => index.name.endsWith('server_session_id_id_idx'))!
      await sql`comment on index ${sql.id(victim.name)} is null`.execute(store.db)
      let steps = 0
      const lost = new Error('the lease was lost')
      // A writer of the partition holds it: the rebuild waits for it, as a long one would run.
      await store.db.transaction().execute(async (trx) => {
        await sql`lock table ${sql.table(closed)} in row exclusive mode`.execute(trx)
        // Waited for, the rebuild would never end: the writer lets go only after it.
        await expect(
          compactClosedPartitions(store.db, {
            beforeMs: openDay + 2 * HOUR - CLOSED_AFTER_MS,
            heartbeatMs: 50,
            // Renewed once (before the index), then lost at the first heartbeat.
            step: async () => {
              if (++steps > 1) throw lost
            },
          }),
        ).rejects.toBe(lost)
      })
      expect(steps).toBeGreaterThan(1)
      expect((await indexesOf(store, closed)).some((index) => !index.valid)).toBe(true)

      expect(await compactClosedPartitions(store.db, { beforeMs: openDay + 2 * HOUR - CLOSED_AFTER_MS })).toEqual({
        partitions: 1,
        indexes: 1,
        leftovers: 1,
      })
      const after = await indexesOf(store, closed)
      expect(after.every((index) => index.valid && index.comment === COMPACTED)).toBe(true)
      expect(after.find((index) => index.name === victim.name)!.oid).not.toBe(victim.oid)
      expect(await reads()).toEqual(readsBefore)
    },
  )
})
