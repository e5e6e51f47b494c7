import { sql, type Kysely } from 'kysely'
import type { Database } from './db.js'
import { eventPartitions } from './retention-partitions.js'

// PostgreSQL: the indexes of a partition that no event can go to any more are rebuilt once, full.
//
// While a partition is written, its B-tree indexes are about 59% full: appends interleave the
// sessions and runs, so a full leaf page splits in two halves that never fill again (nbtree fills
// the left half for good only when the split is at the very end of the index). The (server_run_id,
// id) index took 120 bytes an event so, 71 once rebuilt at fillfactor 100 (a seeded session of
// 100,000 events); the primary key 78, then 71. A partition whose range of ids has ended is never
// appended to again (an id starts with the time it was made): like a force-merge once an index
// stops taking writes (Elasticsearch's force-merge), the pruner rebuilds each of its indexes
// once, with `ALTER INDEX … SET (fillfactor = 100)` and then `REINDEX INDEX CONCURRENTLY`, which
// builds a copy beside it and swaps them: the table's readers and writers wait for nothing. It
// cannot run in a transaction block, so it runs on a connection of its own, and without the
// pool's statement timeout (a big index takes minutes).
//
// What is done is read from the catalog, so it survives restarts: a compacted index has a comment
// (COMPACTED), written after its rebuild. fillfactor = 100 cannot say so: it must be set before the
// rebuild, for the rebuild to use it, and a pruner that dies between the two leaves it on an index
// not rebuilt. With the comment last, a pruner that dies anywhere leaves an index without it,
// which the next prune rebuilds (again, at worst). A REINDEX CONCURRENTLY interrupted leaves an
// invalid copy beside the index, `<index>_ccnew` (or the old one, `<index>_ccold`, once swapped):
// the next prune drops it, concurrently too, before anything else on that partition.
//
// A rebuild can outlast the prune lease (two minutes): while one runs, `step` is called every
// HEARTBEAT_MS, which renews the lease. When it throws (the lease was lost, or the server is
// stopping and waits for the prune to end) the rebuild is cancelled (pg_cancel_backend) rather
// than waited for: it leaves its invalid copy, which the next prune drops.
//
// An index that is empty (its metapage alone: a partition of a day without events, or the error
// events' index of a day without errors) holds nothing to pack: it is marked without a rebuild.
//
// PGlite (PostgreSQL 18 in one process) runs REINDEX and DROP INDEX CONCURRENTLY as the server
// does: there is one session, so nothing to wait for. No other path is needed for it.

/**
 * How long after its end a partition counts as closed. An event's id is made when its request
 * comes, and its transaction may commit a little later; and the processes' clocks differ (by well
 * under a minute: ids and the prune lease ask that of them). An event made just before midnight
 * may so land in the day before, a moment after midnight by the pruner's clock; ten minutes is
 * far beyond both. A write that came later all the same still goes in: its index splits a page.
 */
export const CLOSED_AFTER_MS = 10 * 60_000

/** How often a rebuild that is running renews the prune lease (prune-lease.ts: it lasts two minutes). */
export const HEARTBEAT_MS = 30_000

/** The comment of an index that was compacted: the catalog's record that it is done. */
export const COMPACTED =
  'compacted: rebuilt with fillfactor 100 once its partition was closed (retention-compaction.ts)'

/** What a compaction did: partitions with an index rebuilt or marked, indexes so, invalid leftovers dropped. */
export interface Compaction {
  partitions: number
  indexes: number
  leftovers: number
}

interface PartitionIndex {
  name: string
  valid: boolean
  /** Attached to one of session_events' own indexes (an interrupted rebuild's copy is not). */
  attached: boolean
  compacted: boolean
  /** Its metapage alone: nothing in it. */
  empty: boolean
}

/** The B-tree indexes of one partition, as the catalog has them now. */
async function indexesOf(db: Kysely<Database>, partition: string): Promise<PartitionIndex[]> {
  const { rows } = await sql<PartitionIndex>`
    select c.relname as name, i.indisvalid as valid, c.relispartition as attached,
           coalesce(obj_description(c.oid, 'pg_class') = ${COMPACTED}, false) as compacted,
           pg_relation_size(c.oid) <= current_setting('block_size')::int as empty
      from pg_index i
      join pg_class c on c.oid = i.indexrelid
      join pg_am am on am.oid = c.relam
     where i.indrelid = ${partition}::regclass and am.amname = 'btree'
     order by c.relname`.execute(db)
  return rows
}

/** What REINDEX CONCURRENTLY leaves when it is interrupted: an invalid copy, named so, attached to nothing. */
const isLeftover = (index: PartitionIndex) => !index.valid && !index.attached && /_cc(new|old)[0-9]*$/.test(index.name)

/**
 * Compacts the indexes of every partition whose range ended by `beforeMs` (give it now minus
 * CLOSED_AFTER_MS) and that are not compacted yet; first drops what interrupted rebuilds left
 * there. Nothing where the table is not partitioned (SQLite). `step` is called before each index;
 * it throws to stop (the pruner lost its lease, or the server is stopping), and the next prune
 * goes on from there.
 */
export async function compactClosedPartitions(
  db: Kysely<Database>,
  options: { beforeMs: number; step?: () => Promise<void>; heartbeatMs?: number },
): Promise<Compaction> {
  const step = options.step ?? (async () => {})
  const done: Compaction = { partitions: 0, indexes: 0, leftovers: 0 }
  const closed = ((await eventPartitions(db)) ?? []).filter((p) => !p.detaching && p.toMs <= options.beforeMs)
  for (const partition of closed) {
    const indexes = await indexesOf(db, partition.name)
    for (const leftover of indexes.filter(isLeftover)) {
      await step()
      await sql`drop index concurrently if exists ${sql.id(leftover.name)}`.execute(db)
      done.leftovers++
    }
    const due = indexes.filter((index) => index.valid && !index.compacted)
    for (const index of due) {
      await step()
      await compactIndex(db, index, step, options.heartbeatMs ?? HEARTBEAT_MS)
      done.indexes++
    }
    if (due.length > 0) done.partitions++
  }
  return done
}

/** Rebuilds one index full (unless it is empty), then marks it compacted; `step` is its heartbeat meanwhile. */
async function compactIndex(
  db: Kysely<Database>,
  index: PartitionIndex,
  step: () => Promise<void>,
  heartbeatMs: number,
): Promise<void> {
  const name = sql.id(index.name)
  await db.connection().execute(async (connection) => {
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(connection)
    /** Why the heartbeat stopped the rebuild, if it did, and its cancel request. */
    let stopped: { error: unknown; cancel: Promise<unknown> } | undefined
    const heartbeat = setInterval(() => {
      step().catch((error: unknown) => {
        stopped ??= { error, cancel: sql`select pg_cancel_backend(${rows[0]!.pid})`.execute(db).catch(() => {}) }
      })
    }, heartbeatMs)
    // The pool's statement timeout is for requests; this connection goes back to it as it came.
    await sql`set statement_timeout = 0`.execute(connection)
    try {
      await sql`alter index ${name} set (fillfactor = 100)`.execute(connection)
      if (!index.empty) await sql`reindex index concurrently ${name}`.execute(connection)
      if (stopped) throw stopped.error
      await sql`comment on index ${name} is ${sql.lit(COMPACTED)}`.execute(connection)
    } catch (error) {
      throw stopped ? stopped.error : error
    } finally {
      clearInterval(heartbeat)
      // The cancel is done before the connection goes back to the pool, so that it can only land
      // on this rebuild or on the reset below, never on another's query.
      await stopped?.cancel
      // Back to the pool's. If this fails too, the connection is lost: the error to report is the one above.
      await sql`reset statement_timeout`.execute(connection).catch(() => {})
    }
  })
}
