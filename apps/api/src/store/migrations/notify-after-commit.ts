// Migration 10: PostgreSQL's append no longer NOTIFYs in its transaction.
import { sql } from 'kysely'
import type { Migration } from './migration.js'

export const notifyAfterCommitMigrations: Migration[] = [
  {
    version: 10,
    name: 'PostgreSQL: the append no longer NOTIFYs in its transaction; the process notifies after commit (feed.ts)',
    // A transaction that notified takes a lock at commit that serialises every notifying commit
    // of the cluster (feed.ts has the figures). The function of migration 6, less its NOTIFY;
    // p_channel stays, unused, so that the call is the same.
    async up(db, dialect) {
      if (dialect !== 'postgres') return
      const { rows } = await sql<{
        definition: string
      }>`select pg_get_functiondef('append_session_event'::regproc) as definition`.execute(db)
      const notify = /^\s*perform pg_notify\(p_channel, p_session_id\);\n/m
      const definition = rows[0]!.definition
      if (!notify.test(definition)) throw new Error('append_session_event: its NOTIFY is not where migration 6 put it')
      await sql.raw(definition.replace(notify, '')).execute(db)
    },
  },
]
