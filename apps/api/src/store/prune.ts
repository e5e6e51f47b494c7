import { sql, type Kysely } from 'kysely'
import type { Database } from './db.js'
import type { DialectName } from './dialect.js'
import { KEEP_MS } from './idempotency.js'
import { idBound, instanceRetentions } from './retention.js'
import {
  dropExpiredPartitions,
  ensureEventPartitions,
  eventPartitions,
  partitionWidth,
  type EventPartition,
} from './retention-partitions.js'

// One prune: what retention says must go, goes, and nothing younger.
//
// - Events older than their instance's retention (retention.ts): those of EVENT_RETENTION in one
//   pass in id order, whatever their session (passing over the instances that keep theirs
//   longer), those of an instance with a retention of its own session by session. On PostgreSQL,
//   first the partitions past the longest retention in force go whole (retention-partitions.ts);
//   the batches then only take what partitions cannot: the events of shorter retentions, and
//   those in partitions too wide to wait for (the first one). The events of the longest retention
//   in the other partitions wait for their partition: at most its width (a day, or a week from 12
//   weeks on) past their time. On SQLite, everything in batches (`rowid IN (SELECT … LIMIT n)`),
//   then the freed pages go back to the file system (incremental auto_vacuum, migration 9).
// - Sessions with no events left whose last activity is older than the retention, with their
//   server sessions, runs and run errors. A session's last activity is the newest of its
//   creation, its own update, and its server sessions' and runs' updates; its events count too,
//   since a session goes only once it has none left.
// - Idempotency-Key answers older than a day.
//
// Every step reads the store as it is: what a writer commits meanwhile is younger than any
// cutoff and is never touched. Events are deleted only below an id bound made from the cutoff
// (ids start with their creation time), and a session only once it is checked again, under its
// lock (PostgreSQL) or the write lock (SQLite), to be empty and idle.

export interface PruneOptions {
  /** EVENT_RETENTION: the retention of every instance without one of its own (ms; Infinity: off). */
  defaultRetentionMs: number
  /** Removes, besides, everything older than this (`admin prune --older-than`), whatever the retention. */
  olderThanMs?: number
  /** The time to prune at. Default: now. */
  now?: Date
  /** Called before each step (a batch, a partition); throws to stop there (a lost lease, a shutdown). */
  step?: () => Promise<void>
}

export interface PruneResult {
  events_deleted: number
  sessions_deleted: number
  idempotency_keys_deleted: number
}

/** What a prune needs of the store. */
export interface PrunableStore {
  readonly dialect: DialectName
  readonly db: Kysely<Database>
  readonly idempotencyKeys: { expire(before: Date): Promise<number> }
}

/** Sessions looked at in one go. */
const SESSIONS_PER_BATCH = 500
/**
 * How long one batch of deletes should take on SQLite, where it holds the database's write lock
 * and this process's event loop (better-sqlite3 is synchronous): the batch size follows what the
 * last batch took, from 50 to 5,000 rows. PostgreSQL's readers and writers do not wait for a
 * delete: 5,000 rows a statement there.
 */
const SQLITE_BATCH_MS = 10
/** Pages given back to the file system per transaction, on SQLite. */
const PAGES_PER_STEP = 256

/** Lets the event loop answer requests between two synchronous SQLite batches. */
const yieldToRequests = () => new Promise<void>((resolve) => setImmediate(resolve))

/** The number of rows the next batch deletes. */
class BatchSize {
  rows: number
  constructor(readonly dialect: DialectName) {
    this.rows = dialect === 'sqlite' ? 500 : 5_000
  }

  /** Runs a batch of `rows` rows at most: how many it deleted, and whether that was all it could (more may be left). */
  async run(batch: (rows: number) => Promise<number>): Promise<{ deleted: number; full: boolean }> {
    const started = performance.now()
    const rows = this.rows
    const deleted = await batch(rows)
    if (this.dialect === 'sqlite' && deleted === rows) {
      const factor = SQLITE_BATCH_MS / Math.max(performance.now() - started, 0.1)
      this.rows = Math.round(Math.min(5_000, Math.max(50, rows * Math.min(2, Math.max(0.5, factor)))))
    }
    return { deleted, full: deleted === rows }
  }
}

export async function prune(store: PrunableStore, options: PruneOptions): Promise<PruneResult> {
  const { db, dialect } = store
  const now = options.now ?? new Date()
  const nowMs = now.getTime()
  const step = async () => {
    await options.step?.()
    if (dialect === 'sqlite') await yieldToRequests()
  }
  const within = (retentionMs: number) => Math.min(retentionMs, options.olderThanMs ?? Infinity)
  const instances = await instanceRetentions(db, options.defaultRetentionMs)
  const byDefault = within(options.defaultRetentionMs)
  const longest = Math.max(byDefault, ...instances.map((i) => within(i.retentionMs)))
  const batch = new BatchSize(dialect)
  let events = 0
  let sessions = 0

  let partitions: EventPartition[] | undefined
  if (dialect === 'postgres') {
    if (longest < Infinity) events += (await dropExpiredPartitions(db, { beforeMs: nowMs - longest, step })).events
    await ensureEventPartitions(db, { now, widthMs: partitionWidth(longest) })
    partitions = (await eventPartitions(db))?.filter((p) => !p.detaching)
  }
  // From where on the events of the longest retention are left to their partition's drop: the
  // newest partitions, as long as each is at most a twelfth of that retention wide.
  let droppedFromMs = Infinity
  if (partitions)
    for (const p of [...partitions].reverse()) {
      if (p.toMs - p.fromMs > longest / 12) break
      droppedFromMs = p.fromMs
    }
  /** The id below which an instance's events go in batches, for a retention. */
  const eventBound = (retentionMs: number) =>
    idBound(
      'sessionEvent',
      retentionMs === longest ? Math.min(nowMs - retentionMs, droppedFromMs) : nowMs - retentionMs,
    )

  // EVENT_RETENTION: one pass over the events in id order (so in time order, as they lie in the
  // table), whatever their session, but those of instances that keep theirs longer.
  if (byDefault < Infinity) {
    const keptLonger = instances.filter((i) => within(i.retentionMs) > byDefault).map((i) => i.instanceId)
    events += await deleteEventsBefore(store, eventBound(byDefault), keptLonger, partitions, batch, step)
  }
  for (const instance of instances) {
    const retentionMs = within(instance.retentionMs)
    if (retentionMs === Infinity) continue
    const cutoffMs = nowMs - retentionMs
    const cutoff = new Date(cutoffMs).toISOString()
    // Only a session made before the cutoff can hold events older than it, or be idle since.
    const sessionBound = idBound('session', cutoffMs)
    let after = ''
    for (;;) {
      await step()
      const rows = await db
        .selectFrom('sessions')
        .select('id')
        .where('instance_id', '=', instance.instanceId)
        .where('id', '>', after)
        .where('id', '<', sessionBound)
        .orderBy('id')
        .limit(SESSIONS_PER_BATCH)
        .execute()
      if (rows.length === 0) break
      const ids = rows.map((row) => row.id)
      after = ids.at(-1)!
      // An instance with a retention of its own: its sessions' events, session by session.
      if (retentionMs !== byDefault)
        events += await deleteSessionEvents(store, ids, eventBound(retentionMs), partitions, batch, step)
      sessions += await deleteIdleSessions(store, ids, cutoff)
    }
  }

  await step()
  const keys = await store.idempotencyKeys.expire(new Date(nowMs - KEEP_MS))
  if (dialect === 'sqlite') await giveBackSpace(db, step)
  return { events_deleted: events, sessions_deleted: sessions, idempotency_keys_deleted: keys }
}

/**
 * Deletes the events with ids below `bound`, in id order, a batch at a time, but those of the
 * instances `except`; returns how many. Each batch goes on after the last id the one before
 * deleted, so the events of `except` are read past once, not once a batch.
 */
async function deleteEventsBefore(
  store: PrunableStore,
  bound: string,
  except: string[],
  partitions: EventPartition[] | undefined,
  batch: BatchSize,
  step: () => Promise<void>,
): Promise<number> {
  const db = store.db as Kysely<any>
  const kept = except.length > 0 && db.selectFrom('sessions').select('id').where('instance_id', 'in', except)
  let deleted = 0
  if (store.dialect === 'sqlite') {
    let after = ''
    for (;;) {
      await step()
      let last: string | undefined
      const { deleted: n } = await batch.run(async (limit) => {
        let rows = db
          .selectFrom('session_events')
          .select(sql`rowid`.as('rowid'))
          .where('id', '>', after)
          .where('id', '<', bound)
        if (kept) rows = rows.where('session_id', 'not in', kept)
        const ids = await db
          .deleteFrom('session_events')
          .where(sql<boolean>`rowid in (${rows.orderBy('id').limit(limit)})`)
          .returning('id')
          .execute()
        for (const { id } of ids as { id: string }[]) if (last === undefined || id > last) last = id
        return ids.length
      })
      deleted += n
      if (last === undefined) return deleted
      after = last
    }
  }
  // PostgreSQL: partition by partition, by the rows' physical address (a Tid Scan), as SQLite does
  // by rowid. On the partitioned table, `id IN (SELECT … LIMIT n)` is planned as a join that
  // reads every partition.
  for (const partition of partitions ?? []) {
    if (idBound('sessionEvent', partition.fromMs) >= bound) break
    let after = ''
    for (;;) {
      await step()
      let last: string | null = null
      const { deleted: n } = await batch.run(async (limit) => {
        let rows = db
          .selectFrom(partition.name)
          .select(sql`ctid`.as('ctid'))
          .where('id', '>', after)
          .where('id', '<', bound)
        if (kept) rows = rows.where('session_id', 'not in', kept)
        const { rows: done } = await sql<{ n: number; last: string | null }>`
          with deleted as (
            delete from ${sql.table(partition.name)} where ctid = any(array(${rows.orderBy('id').limit(limit)})) returning id
          )
          select count(*)::int as n, max(id) as last from deleted`.execute(db)
        last = done[0]!.last
        return done[0]!.n
      })
      deleted += n
      if (last === null) break
      after = last
    }
  }
  return deleted
}

/** Deletes the events of these sessions with ids below `bound`, a batch at a time; returns how many. */
async function deleteSessionEvents(
  store: PrunableStore,
  sessionIds: string[],
  bound: string,
  partitions: EventPartition[] | undefined,
  batch: BatchSize,
  step: () => Promise<void>,
): Promise<number> {
  const db = store.db as Kysely<any>
  let deleted = 0
  if (store.dialect === 'sqlite') {
    for (;;) {
      const { deleted: n, full } = await batch.run(async (limit) => {
        const rows = db
          .selectFrom('session_events')
          .select(sql`rowid`.as('rowid'))
          .where('session_id', 'in', sessionIds)
          .where('id', '<', bound)
          .limit(limit)
        const result = await db
          .deleteFrom('session_events')
          .where(sql<boolean>`rowid in (${rows})`)
          .executeTakeFirst()
        return Number(result.numDeletedRows)
      })
      deleted += n
      if (!full) return deleted
      await step()
    }
  }
  for (const partition of partitions ?? []) {
    if (idBound('sessionEvent', partition.fromMs) >= bound) break
    for (;;) {
      const { deleted: n, full } = await batch.run(async (limit) => {
        const rows = db
          .selectFrom(partition.name)
          .select(sql`ctid`.as('ctid'))
          .where(sql<boolean>`session_id = any(${sessionIds}::text[])`)
          .where('id', '<', bound)
          .limit(limit)
        const result = await db
          .deleteFrom(partition.name)
          .where(sql<boolean>`ctid = any(array(${rows}))`)
          .executeTakeFirst()
        return Number(result.numDeletedRows)
      })
      deleted += n
      if (!full) break
      await step()
    }
  }
  return deleted
}

/**
 * Of these sessions, those with no event and nothing done since `cutoff` (an ISO time): their
 * own update (or creation), their server sessions' and their runs' updates.
 */
async function idleSessions(db: Kysely<Database>, sessionIds: string[], cutoff: string): Promise<string[]> {
  if (sessionIds.length === 0) return []
  const rows = await db
    .selectFrom('sessions as s')
    .select('s.id')
    .where('s.id', 'in', sessionIds)
    .where((eb) => eb.fn.coalesce('s.updated_at', 's.created_at'), '<', cutoff)
    .where((eb) =>
      eb.not(eb.exists(eb.selectFrom('session_events as e').select('e.id').whereRef('e.session_id', '=', 's.id'))),
    )
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('server_sessions as ss')
            .select('ss.id')
            .whereRef('ss.session_id', '=', 's.id')
            .where('ss.updated_at', '>=', cutoff),
        ),
      ),
    )
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('server_sessions as ss')
            .innerJoin('server_runs as r', 'r.server_session_id', 'ss.id')
            .select('r.id')
            .whereRef('ss.session_id', '=', 's.id')
            .where('r.updated_at', '>=', cutoff),
        ),
      ),
    )
    .execute()
  return rows.map((row) => row.id)
}

/** The sessions, their server sessions, runs and run errors: sessions found idle and empty just before, in their transaction. */
async function removeSessions(trx: Kysely<Database>, sessionIds: string[]): Promise<void> {
  const serverSessions = trx.selectFrom('server_sessions').select('id').where('session_id', 'in', sessionIds)
  const runs = trx.selectFrom('server_runs').select('id').where('server_session_id', 'in', serverSessions)
  await trx.deleteFrom('server_run_errors').where('server_run_id', 'in', runs).execute()
  await trx.deleteFrom('server_runs').where('server_session_id', 'in', serverSessions).execute()
  await trx.deleteFrom('server_sessions').where('session_id', 'in', sessionIds).execute()
  await trx.deleteFrom('sessions').where('id', 'in', sessionIds).execute()
}

/**
 * Deletes those of these sessions that are empty and idle since `cutoff`, checked again in the
 * deleting transaction, where no writer can add to them meanwhile; returns how many went.
 */
async function deleteIdleSessions(store: PrunableStore, sessionIds: string[], cutoff: string): Promise<number> {
  const candidates = await idleSessions(store.db, sessionIds, cutoff)
  if (candidates.length === 0) return 0
  if (store.dialect === 'postgres') {
    return store.db.transaction().execute(async (trx) => {
      // The lock a writer takes on its session (lockSession) or on the row it refers to (a
      // foreign key); a session a writer holds is not idle: leave it.
      const { rows } = await sql<{ id: string }>`
        select id from sessions where id = any(${candidates}::text[]) for update skip locked`.execute(trx)
      const idle = await idleSessions(
        trx,
        rows.map((row) => row.id),
        cutoff,
      )
      if (idle.length > 0) await removeSessions(trx, idle)
      return idle.length
    })
  }
  // SQLite: in the write lock, with foreign keys unchecked for the moment: checking that no
  // event names a run or server session deleted here would read all of session_events once for
  // each (nothing indexes events by run), and the session was just found to have no event at all.
  // The connection is this transaction's alone meanwhile (the store's writes wait for it).
  return store.db.connection().execute(async (conn) => {
    await sql`pragma foreign_keys = off`.execute(conn)
    try {
      await sql`begin immediate`.execute(conn)
      try {
        const idle = await idleSessions(conn, candidates, cutoff)
        if (idle.length > 0) await removeSessions(conn, idle)
        await sql`commit`.execute(conn)
        return idle.length
      } catch (error) {
        await sql`rollback`.execute(conn).catch(() => {})
        throw error
      }
    } finally {
      await sql`pragma foreign_keys = on`.execute(conn)
    }
  })
}

/**
 * SQLite: gives the pages that deletes freed back to the file system (auto_vacuum = INCREMENTAL,
 * migration 9), a few at a time, then checkpoints the write-ahead log so that the file itself
 * shrinks. PRAGMA incremental_vacuum frees one page each time it is stepped, and the driver steps
 * a statement that returns no rows once: so it is run once per page, in transactions of
 * PAGES_PER_STEP.
 */
async function giveBackSpace(db: Kysely<Database>, step: () => Promise<void>): Promise<void> {
  const { rows } = await sql<{ n: number }>`select freelist_count as n from pragma_freelist_count()`.execute(db)
  let free = Number(rows[0]?.n ?? 0)
  if (free === 0) return
  const { rows: mode } = await sql<{ n: number }>`select auto_vacuum as n from pragma_auto_vacuum()`.execute(db)
  if (Number(mode[0]?.n) !== 2) return
  while (free > 0) {
    await step()
    const pages = Math.min(free, PAGES_PER_STEP)
    await db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn)
      try {
        for (let i = 0; i < pages; i++) await sql`pragma incremental_vacuum(1)`.execute(conn)
        await sql`commit`.execute(conn)
      } catch (error) {
        await sql`rollback`.execute(conn).catch(() => {})
        throw error
      }
    })
    free -= pages
  }
  await sql`pragma wal_checkpoint(passive)`.execute(db)
}
