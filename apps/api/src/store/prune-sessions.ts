import { sql, type Kysely } from 'kysely'
import type { Database } from './db.js'
import type { PrunableStore } from './prune-store.js'

// A prune's deletion of sessions: those empty and idle past the retention, with their server
// sessions, runs and run errors, checked again under a lock before they go (prune.ts runs it).

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
export async function deleteIdleSessions(store: PrunableStore, sessionIds: string[], cutoff: string): Promise<number> {
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
