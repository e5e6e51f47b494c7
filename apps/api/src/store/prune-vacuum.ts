import { sql, type Kysely } from 'kysely'
import type { Database } from './db.js'

// After a prune on SQLite: the pages its deletes freed go back to the file system.

/** Pages given back to the file system per transaction, on SQLite. */
const PAGES_PER_STEP = 256

/**
 * SQLite: gives the pages that deletes freed back to the file system (auto_vacuum = INCREMENTAL,
 * migration 9), a few at a time, then checkpoints the write-ahead log so that the file itself
 * shrinks. PRAGMA incremental_vacuum frees one page each time it is stepped, and the driver steps
 * a statement that returns no rows once: so it is run once per page, in transactions of
 * PAGES_PER_STEP.
 */
export async function giveBackSpace(db: Kysely<Database>, step: () => Promise<void>): Promise<void> {
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
