// Migration 12: PostgreSQL indexes the error events of a session alone, not every event's type.
import { sql } from 'kysely'
import type { Migration } from './migration.js'

export const errorEventsIndexMigrations: Migration[] = [
  {
    version: 12,
    name: 'PostgreSQL: session_events_type holds the events that are not server_logs, not every event',
    // A listing filtered by type was a keyset scan of (session_id, type, id): an entry for every
    // event, 97 bytes an event of the 954 a small event took (bench/README.md, Storage), and one
    // more index that every append wrote. Almost every event is `server_logs`: a listing of those
    // alone reads the session's own index (session_id, id) and passes over its few error events,
    // and one of the others reads this index, which holds only them; a listing of both types has
    // no filter to apply. The partial index serves a filter of `type IN (…)` when PostgreSQL can
    // prove the values are not `server_logs`: the API's queries bind them, and each is planned
    // with its values (test/query-plans.test.ts EXPLAINs every filter). SQLite keeps its index:
    // its planner takes a partial index only for a query whose WHERE repeats the index's own.
    async up(db, dialect) {
      if (dialect !== 'postgres') return
      await sql`drop index session_events_type`.execute(db)
      await sql`create index session_events_type on session_events (session_id, id) where type <> 'server_logs'`.execute(
        db,
      )
    },
  },
]
