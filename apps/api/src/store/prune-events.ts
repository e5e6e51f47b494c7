import { sql, type Kysely } from 'kysely'
import type { DialectName } from './dialect.js'
import type { PrunableStore } from './prune-store.js'
import { idBound } from './retention.js'
import type { EventPartition } from './retention-partitions.js'

// A prune's deletion of events, a batch at a time: on SQLite by rowid, on PostgreSQL partition by
// partition by ctid (its rows' physical address); on SQLite the batches' size follows what they
// take (prune.ts runs them).

/**
 * How long one batch of deletes should take on SQLite, where it holds the database's write lock
 * and this process's event loop (better-sqlite3 is synchronous): the batch size follows what the
 * last batch took, from 50 to 5,000 rows. PostgreSQL's readers and writers do not wait for a
 * delete: 5,000 rows a statement there.
 *
 * A prune of 10⁶ events with 8 connections appending (`npm run bench -- --only prune`, one run
 * each, quiet machine): at 10 ms the appends' p99 during ÷ without was 2.63 (42 / 16 ms) and the
 * prune alone 124,000 events/s; at 5 ms 2.13 and 122,000; at 3 ms 1.65 (28 / 17 ms) and 86,000.
 */
const SQLITE_BATCH_MS = 3

/**
 * The pages of a partition that one delete of deleteEventsBefore walks on PostgreSQL: 2 MB, about
 * 5,000 small events.
 */
const POSTGRES_BATCH_PAGES = 256

/** The number of rows the next batch deletes. */
export class BatchSize {
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

/**
 * Deletes the events with ids below `bound`, a batch at a time, but those of the instances
 * `except`; returns how many. Each batch goes on where the one before stopped (SQLite: after the
 * last id it deleted; PostgreSQL: after the pages it walked), so the events of `except` are read
 * past once, not once a batch.
 */
export async function deleteEventsBefore(
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
  // PostgreSQL: partition by partition, a range of its pages at a time (a TID Range Scan): no
  // index is needed to walk a partition (its primary key begins with the session, migration 13),
  // and each row is read once. Rows written into the partition while it is walked, past the pages
  // it had, are left to the next prune.
  for (const partition of partitions ?? []) {
    if (idBound('sessionEvent', partition.fromMs) >= bound) break
    const { rows } = await sql<{ pages: number }>`
      select (pg_relation_size(${partition.name}::regclass) / current_setting('block_size')::int)::int as pages`.execute(
      db,
    )
    const pages = rows[0]!.pages
    for (let from = 0; from < pages; from += POSTGRES_BATCH_PAGES) {
      await step()
      let doomed = db
        .deleteFrom(partition.name)
        .where(sql<boolean>`ctid >= ${`(${from},0)`}::tid and ctid < ${`(${from + POSTGRES_BATCH_PAGES},0)`}::tid`)
        .where('id', '<', bound)
      if (kept) doomed = doomed.where('session_id', 'not in', kept)
      deleted += Number((await doomed.executeTakeFirst()).numDeletedRows)
    }
  }
  return deleted
}

/** Deletes the events of these sessions with ids below `bound`, a batch at a time; returns how many. */
export async function deleteSessionEvents(
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
