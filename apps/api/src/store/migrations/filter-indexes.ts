// Migration 14: PostgreSQL's filter indexes begin with the run or the server session.
import { sql } from 'kysely'
import type { Migration } from './migration.js'

export const filterIndexesMigrations: Migration[] = [
  {
    version: 14,
    name: 'PostgreSQL: the run and server session filters are indexed by (server_run_id, id) and (server_session_id, id)',
    // A run and a server session belong to one session, so the session at the head of the filter
    // indexes, (session_id, server_run_id, id) and (session_id, server_session_id, id), told
    // nothing that the run or server session does not, in 28 bytes of every entry (each index
    // took 179 of the 808 bytes of a small event: docs/scaling.md, How the events table grows). The
    // keyset scan of a run or server session is the same without it; the session is checked on
    // the rows the index leads to, and the reader checks once that a run or server session named
    // in a filter is the session's before it reads any (reader.ts, filterIndexesWithoutSession),
    // so that one of another session is not read through. SQLite keeps its indexes: its rows live
    // in their rowid's b-tree, and each index entry costs it what it would cost here anyway.
    async up(db, dialect) {
      if (dialect !== 'postgres') return
      for (const filter of ['server_run_id', 'server_session_id'] as const) {
        const index = sql.id(`session_events_${filter}`)
        await sql`drop index ${index}`.execute(db)
        await sql`create index ${index} on session_events (${sql.id(filter)}, id)`.execute(db)
      }
    },
  },
]
