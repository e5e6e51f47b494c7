// Migrations 7-9: retention (instances.event_retention and leases, event partitions, SQLite's auto_vacuum).
import { sql } from 'kysely'
import type { Migration } from './migration.js'

export const retentionMigrations: Migration[] = [
  {
    version: 7,
    name: 'retention: an instance may keep its events its own time; one pruner at a time; a session removable with its runs',
    async up(db) {
      // null: EVENT_RETENTION; else a duration as `admin instances set-retention` wrote it (`7d`, `off`).
      await db.schema.alterTable('instances').addColumn('event_retention', 'text').execute()
      // Leases: one process at a time does a job (the pruner, store/prune-lease.ts). One row per
      // job, made here, never removed; a lease whose time is past is free.
      await db.schema
        .createTable('leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('last_run_at', 'text', (c) => c.notNull())
        .execute()
      const epoch = new Date(0).toISOString()
      await db
        .insertInto('leases')
        .values({ name: 'prune', holder: '', expires_at: epoch, last_run_at: epoch })
        .execute()
      // Removing a session removes its server sessions, their runs and the runs' errors, found
      // (and checked by their foreign keys) through these.
      await db.schema.createIndex('server_sessions_session_id').on('server_sessions').column('session_id').execute()
      await db.schema
        .createIndex('server_runs_server_session_id')
        .on('server_runs')
        .column('server_session_id')
        .execute()
      await db.schema
        .createIndex('server_run_errors_server_run_id')
        .on('server_run_errors')
        .column('server_run_id')
        .execute()
    },
  },
  {
    version: 8,
    name: 'PostgreSQL: session_events in partitions by range of id, so that expired days are dropped whole',
    // The table becomes a partitioned one, by range of id (an id starts with its creation time,
    // so a range of ids is a range of time), with the same columns and indexes. The existing
    // table is attached as it is, as the first partition: everything before the first day that
    // no event of it reaches (attaching reads it once, to check that). The partitions of the days
    // from then on are made by ensureEventPartitions (retention-partitions.ts), at every start.
    //
    // Events keep one foreign key, to their session. Those to their run, server session and run
    // error go: the writer checks them in the writing transaction, the pruner removes a run only
    // with its session, after its last event, and with them removing a run would read every
    // partition (no index of events starts with these columns).
    async up(db, dialect) {
      if (dialect !== 'postgres') return
      const DAY_MS = 86_400_000
      // The smallest event id made at `ms` (ids.ts): `sev_` and 9 base-36 digits of the time.
      const bound = (ms: number) => `sev_${ms.toString(36).padStart(9, '0')}`
      const { rows } = await sql<{ last: string | null }>`select max(id) as last from session_events`.execute(db)
      const lastMs = rows[0]?.last ? parseInt(rows[0].last.slice(4, 13), 36) : -Infinity
      const today = Math.floor(Date.now() / DAY_MS) * DAY_MS
      const firstDay = Math.max(today, Math.floor(lastMs / DAY_MS) * DAY_MS + DAY_MS)

      await sql`alter table session_events rename to session_events_p0`.execute(db)
      for (const index of ['pkey', 'session_id', 'server_run_id', 'server_session_id', 'type'])
        await sql`alter index ${sql.id(`session_events_${index}`)} rename to ${sql.id(`session_events_p0_${index}`)}`.execute(
          db,
        )
      const { rows: keys } = await sql<{ name: string }>`
        select conname as name from pg_constraint
         where conrelid = 'session_events_p0'::regclass and contype = 'f' and confrelid <> 'sessions'::regclass`.execute(
        db,
      )
      for (const { name } of keys) await sql`alter table session_events_p0 drop constraint ${sql.id(name)}`.execute(db)

      await sql`
        create table session_events (
          id text collate "C" not null,
          session_id text collate "C" not null references sessions (id),
          server_run_id text collate "C",
          server_session_id text collate "C",
          type text not null,
          server_run_error_id text collate "C",
          log_lines_json text not null,
          created_at text not null,
          constraint session_events_pkey primary key (id)
        ) partition by range (id)`.execute(db)
      // Listing is a keyset scan over (session_id, id), narrowed by one filter at a time.
      await sql`create index session_events_session_id on session_events (session_id, id)`.execute(db)
      await sql`create index session_events_server_run_id on session_events (session_id, server_run_id, id)`.execute(db)
      await sql`create index session_events_server_session_id on session_events (session_id, server_session_id, id)`.execute(
        db,
      )
      await sql`create index session_events_type on session_events (session_id, type, id)`.execute(db)
      await sql`alter table session_events attach partition session_events_p0
                for values from (minvalue) to (${sql.lit(bound(firstDay))})`.execute(db)
    },
  },
  {
    version: 9,
    name: 'SQLite: freed pages go back to the file system (incremental auto_vacuum)',
    // auto_vacuum takes effect on an existing file only through VACUUM, which rewrites the file
    // and cannot run in a transaction: this migration runs on its own, after the others have
    // committed (migrate()). Run twice (a crash before it was recorded), it finds the mode set.
    outsideTransaction: true,
    async up(db, dialect) {
      if (dialect !== 'sqlite') return
      const { rows: files } = await sql<{
        file: string
      }>`select file from pragma_database_list where name = 'main'`.execute(db)
      if (!files[0]?.file) return // in memory: nothing to give back to
      const { rows } = await sql<{ mode: number }>`select auto_vacuum as mode from pragma_auto_vacuum()`.execute(db)
      if (Number(rows[0]?.mode) === 2) return
      await sql`pragma auto_vacuum = incremental`.execute(db)
      await sql`vacuum`.execute(db)
    },
  },
]
