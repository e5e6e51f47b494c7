import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { seed } from '../src/seed.js'
import { migrate, migrations } from '../src/store/migrations.js'
import { openStore } from '../src/store/open.js'
import { prune } from '../src/store/prune.js'
import { DAY_MS, ensureEventPartitions, eventPartitions, FIRST_PARTITION } from '../src/store/retention-partitions.js'
import { parseRetention } from '../src/store/retention.js'
import { openSqlite } from '../src/store/sqlite.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, onPostgres, unmigratedStore } from './backend.js'

// What retention changes on disk: the migration that moves an existing PostgreSQL table into
// partitions (nothing lost, the same reads), the one that makes its type index hold the error
// events alone, the one that keys it by (session_id, id), the one that indexes its run and server
// session filters without the session, the one that gives an existing SQLite file
// incremental auto_vacuum, and a SQLite file that shrinks once half its events are pruned.

const dir = mkdtempSync(join(tmpdir(), 'session-events-retention-'))
const cleanups: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const allEvents = (store: SqlStore) => store.db.selectFrom('session_events').selectAll().orderBy('id').execute()

/** A session's active run (the seed leaves one in each). */
const activeRunOf = (store: SqlStore, sessionId: string) =>
  store.db
    .selectFrom('server_runs as r')
    .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
    .select('r.id')
    .where('ss.session_id', '=', sessionId)
    .where('r.status', '=', 'active')
    .executeTakeFirstOrThrow()

describe.runIf(onPostgres)(`migration 8 on PostgreSQL (${backend})`, () => {
  it('moves an existing table into partitions: every event kept, the same reads, new events in the days ahead', async () => {
    const store = await unmigratedStore()
    await migrate(store.db, { upTo: 6 })
    const now = Date.now()
    const summary = await seed(store, { sessions: 2, events: 40, now: new Date(now - 3 * DAY_MS) })
    const before = await allEvents(store)
    expect(before.length).toBeGreaterThan(100)
    const sessionId = summary.instances[0]!.sessions[0]!.id
    const page = (s: SqlStore) => s.reader.listEventIds({ sessionId, limit: 25, order: 'desc' })
    const pageBefore = await page(store)

    // 7 and on: what a database at migration 6 has still to run.
    expect(await migrate(store.db)).toBe(migrations.filter((m) => m.version > 6).length)
    const { rows } = await sql<{
      kind: string
    }>`select relkind as kind from pg_class where oid = 'session_events'::regclass`.execute(store.db)
    expect(rows[0]!.kind).toBe('p')
    expect(await allEvents(store)).toEqual(before)
    expect(await page(store)).toEqual(pageBefore)

    const partitions = (await eventPartitions(store.db))!
    expect(partitions[0]).toMatchObject({ name: FIRST_PARTITION, fromMs: -Infinity })
    expect(partitions[0]!.toMs).toBeGreaterThan(now - 3 * DAY_MS)
    expect(partitions.at(-1)!.toMs).toBeGreaterThanOrEqual(now + 2 * DAY_MS)
    for (let i = 1; i < partitions.length; i++) expect(partitions[i]!.fromMs).toBe(partitions[i - 1]!.toMs)
    // The events that were there are all in the first partition; its only foreign key is to its session.
    const { rows: counts } = await sql<{ n: number }>`select count(*)::int as n from session_events_p0`.execute(
      store.db,
    )
    expect(counts[0]!.n).toBe(before.length)
    const { rows: keys } = await sql<{ to: string }>`
      select confrelid::regclass::text as to from pg_constraint
       where conrelid = 'session_events_p0'::regclass and contype = 'f'`.execute(store.db)
    expect(keys.map((k) => k.to)).toEqual(['sessions'])

    // A new event goes to today's partition.
    const run = await activeRunOf(store, sessionId)
    const [id] = await store.seeding.appendLogEvents([
      { serverRunId: run.id, lines: [{ type: 'stdout', line: 'new' }] },
    ])
    const { rows: where } = await sql<{ partition: string }>`
      select tableoid::regclass::text as partition from session_events where id = ${id!}`.execute(store.db)
    const today = partitions.find((p) => p.fromMs <= now && now < p.toMs)!
    expect(where[0]!.partition).toBe(today.name)
    expect(await migrate(store.db)).toBe(0)
  })

  it('migration 12: session_events_type holds the error events alone, in every partition; filters by type list as before', async () => {
    const store = await unmigratedStore()
    await migrate(store.db, { upTo: 11 })
    const now = Date.now()
    const summary = await seed(store, { sessions: 2, events: 40, now: new Date(now - DAY_MS) })
    const sessionId = summary.instances[0]!.sessions[0]!.id
    const listed = (s: SqlStore) =>
      Promise.all(
        [['server_logs'], ['server_run_error'], ['server_logs', 'server_run_error']].map((types) =>
          s.reader.listEventIds({ sessionId, limit: 100, order: 'asc', types: types as ['server_logs'] }),
        ),
      )
    const before = await listed(store)
    expect(before[1]!.ids.length).toBeGreaterThan(0)

    expect(await migrate(store.db, { upTo: 12 })).toBe(1)
    expect(await listed(store)).toEqual(before)
    const partialIndexes = async () => {
      const { rows } = await sql<{ partitions: number; partial: number }>`
        select (select count(*)::int from pg_partition_tree('session_events') where isleaf) as partitions,
               (select count(*)::int from pg_partition_tree('session_events_type') t
                  join pg_index i on i.indexrelid = t.relid
                 where t.isleaf and pg_get_expr(i.indpred, i.indrelid) like '%<> ''server_logs''%') as partial`.execute(
        store.db,
      )
      return rows[0]!
    }
    const migrated = await partialIndexes()
    expect(migrated.partial).toBe(migrated.partitions)
    // The partitions made from then on have it too.
    expect(await ensureEventPartitions(store.db, { now: new Date(now + 10 * DAY_MS) })).not.toEqual([])
    const later = await partialIndexes()
    expect(later.partitions).toBeGreaterThan(migrated.partitions)
    expect(later.partial).toBe(later.partitions)
  })
})

describe.runIf(onPostgres)(`migration 13 on PostgreSQL (${backend})`, () => {
  it('keys session_events by (session_id, id): one index where there were two, the same reads, an id unique in its session', async () => {
    const store = await unmigratedStore()
    await migrate(store.db, { upTo: 12 })
    const summary = await seed(store, { sessions: 2, events: 40, now: new Date(Date.now() - DAY_MS) })
    const sessionId = summary.instances[0]!.sessions[0]!.id
    const reads = async (s: SqlStore) => {
      const page = await s.reader.listEventIds({ sessionId, limit: 25, order: 'desc' })
      return { page, events: await s.reader.sessionEvents(sessionId, page.ids) }
    }
    const before = { all: await allEvents(store), reads: await reads(store) }

    expect(await migrate(store.db, { upTo: 13 })).toBe(1)
    expect({ all: await allEvents(store), reads: await reads(store) }).toEqual(before)
    const { rows: key } = await sql<{ definition: string }>`
      select pg_get_constraintdef(oid) as definition from pg_constraint
       where conrelid = 'session_events'::regclass and contype = 'p'`.execute(store.db)
    expect(key.map((k) => k.definition)).toEqual(['PRIMARY KEY (session_id, id)'])
    const { rows: indexes } = await sql<{ name: string }>`
      select relname as name from pg_class c join pg_index i on i.indexrelid = c.oid
       where i.indrelid = 'session_events'::regclass order by relname`.execute(store.db)
    expect(indexes.map((i) => i.name)).toEqual([
      'session_events_pkey',
      'session_events_server_run_id',
      'session_events_server_session_id',
      'session_events_type',
    ])
    // An event's id once more in its session is refused; appends go on.
    const [first] = before.all.filter((e) => e.session_id === sessionId)
    await expect(store.db.insertInto('session_events').values(first!).execute()).rejects.toThrow(
      /duplicate key value violates unique constraint/,
    )
    const run = await activeRunOf(store, sessionId)
    const appended = await store.writer.appendEvent({
      sessionId,
      serverRunId: run.id,
      lines: [{ type: 'stdout', line: 'after' }],
    })
    expect((await store.reader.sessionEvents(sessionId, [appended.event.id])).length).toBe(1)
  })
})

describe.runIf(onPostgres)(`migration 14 on PostgreSQL (${backend})`, () => {
  it('indexes the run and server session filters without the session: the same pages, none from another session', async () => {
    const store = await unmigratedStore()
    await migrate(store.db, { upTo: 13 })
    const summary = await seed(store, { sessions: 2, events: 60, now: new Date(Date.now() - DAY_MS) })
    const [mine, theirs] = summary.instances[0]!.sessions.map((s) => s.id)
    const filtersOf = (sessionId: string) =>
      store.db
        .selectFrom('server_runs as r')
        .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
        .select(['r.id as run', 'ss.id as serverSession'])
        .where('ss.session_id', '=', sessionId)
        .orderBy('r.id')
        .execute()
    const [own, foreign] = [await filtersOf(mine!), await filtersOf(theirs!)]
    const queries = [
      ...[...own, foreign[0]!].flatMap(({ run, serverSession }) => [
        { serverRunIds: [run] },
        { serverSessionIds: [serverSession] },
      ]),
      { serverRunIds: [own[0]!.run, foreign[0]!.run] },
      { serverSessionIds: own.map((f) => f.serverSession) },
    ]
    const pages = (s: SqlStore) =>
      Promise.all(
        queries.flatMap((filter) =>
          (['asc', 'desc'] as const).map((order) =>
            s.reader.listEventIds({ sessionId: mine!, limit: 10, order, ...filter }).then((page) => page.ids),
          ),
        ),
      )
    const before = await pages(store)
    expect(before.filter((ids) => ids.length > 0).length).toBeGreaterThan(queries.length)

    expect(await migrate(store.db, { upTo: 14 })).toBe(1)
    const after = await pages(store)
    expect(after).toEqual(before)
    // A filter of another session's run or server session: nothing, before and after.
    expect(after.slice(own.length * 4, own.length * 4 + 4)).toEqual([[], [], [], []])
    const { rows } = await sql<{ definition: string }>`
      select pg_get_indexdef(t.relid) as definition
        from pg_partition_tree('session_events_server_run_id') t where t.isleaf
      union all
      select pg_get_indexdef(t.relid) from pg_partition_tree('session_events_server_session_id') t where t.isleaf`.execute(
      store.db,
    )
    expect(rows.length).toBeGreaterThan(2)
    for (const { definition } of rows) expect(definition).toMatch(/ \((server_run_id|server_session_id), id\)$/)
  })
})

describe.runIf(backend === 'sqlite')('SQLite files and retention', () => {
  it('migration 9 gives an existing file incremental auto_vacuum, and keeps what it holds', async () => {
    const file = join(dir, 'existing.db')
    const old = openSqlite(file)
    await migrate(old.db, { upTo: 8 })
    await seed(old, { sessions: 1, events: 30 })
    const autoVacuum = async (s: SqlStore) =>
      (await sql<{ n: number }>`select auto_vacuum as n from pragma_auto_vacuum()`.execute(s.db)).rows[0]!.n
    expect(await autoVacuum(old)).toBe(0)
    const events = await allEvents(old)
    await old.close()

    const store = await openStore(`sqlite:${file}`)
    cleanups.push(() => store.close())
    expect(await autoVacuum(store)).toBe(2)
    expect(await allEvents(store)).toEqual(events)
  })

  it('the file shrinks after a prune of half its events', async () => {
    const file = join(dir, 'half.db')
    const store = await openStore(`sqlite:${file}`)
    cleanups.push(() => store.close())
    const now = Date.now()
    const summary = await seed(store, { sessions: 1, events: 1, now: new Date(now - 45 * DAY_MS) })
    const sessionId = summary.instances[0]!.sessions[0]!.id
    const run = await activeRunOf(store, sessionId)
    const line = { type: 'stdout' as const, line: 'x'.repeat(400) }
    for (const start of [now - 40 * DAY_MS, now - DAY_MS]) {
      for (let batch = 0; batch < 10; batch++) {
        await store.seeding.appendLogEvents(
          Array.from({ length: 1_000 }, (_, i) => ({
            serverRunId: run.id,
            lines: [line],
            at: new Date(start + batch * 1_000 + i),
          })),
        )
      }
    }
    await sql`pragma wal_checkpoint(truncate)`.execute(store.db)
    const full = statSync(file).size

    const result = await prune(store, { defaultRetentionMs: parseRetention('30d'), now: new Date(now) })
    expect(result.events_deleted).toBeGreaterThanOrEqual(10_000)
    const { rows } = await sql<{ n: number }>`select freelist_count as n from pragma_freelist_count()`.execute(store.db)
    expect(rows[0]!.n).toBe(0)
    const pruned = statSync(file).size
    console.log(`retention: a SQLite file of ${full} bytes is ${pruned} bytes after a prune of half its events`)
    expect(pruned).toBeLessThan(full * 0.7)
  })
})
