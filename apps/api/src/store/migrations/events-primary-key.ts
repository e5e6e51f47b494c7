// Migration 13: PostgreSQL's session_events keyed by (session_id, id), the listing's own index.
import { sql } from 'kysely'
import type { Migration } from './migration.js'

export const eventsPrimaryKeyMigrations: Migration[] = [
  {
    version: 13,
    name: 'PostgreSQL: session_events has the primary key (session_id, id), in place of one on id and an index on both',
    // Every read of an event names its session (a listing is a keyset scan of (session_id, id);
    // an event is read with its session), so the primary key on id alone served no read: 50 bytes
    // an event, one more index for every append to write, and the index PostgreSQL sometimes
    // picked for a session's first page or its last id on a table not yet vacuumed, filtering out
    // the other sessions' rows (bench/README.md, Storage). The key (session_id, id) is that
    // listing index, unique: one index where there were two. An id is unique within its session
    // by the key, and across sessions by how it is made (its time and 13 random base-62
    // characters). The pruner walks a partition by its pages, not by id (prune-events.ts).
    // SQLite keeps its table as it is: its rows live in a b-tree by rowid either way.
    async up(db, dialect) {
      if (dialect !== 'postgres') return
      await sql`alter table session_events drop constraint session_events_pkey`.execute(db)
      await sql`alter table session_events add constraint session_events_pkey primary key (session_id, id)`.execute(db)
      await sql`drop index session_events_session_id`.execute(db)
    },
  },
]
