// Migrations 1-5: the initial schema and its early fixes (byte-wise ids, the counts of run changes, the write half).
import { sql } from 'kysely'
import { idType } from '../dialect.js'
import type { Migration } from './migration.js'

/** Every id column, by table: what migration 2 gives byte-wise order on PostgreSQL. */
const ID_COLUMNS: Record<string, string[]> = {
  instances: ['id'],
  api_keys: ['id', 'instance_id'],
  sessions: ['id', 'instance_id'],
  servers: ['id'],
  server_versions: ['id', 'server_id'],
  server_deployments: ['id', 'instance_id', 'server_id'],
  server_sessions: ['id', 'session_id', 'server_deployment_id'],
  server_runs: ['id', 'server_session_id', 'server_deployment_id', 'server_version_id'],
  server_run_errors: ['id', 'server_run_id'],
  session_events: ['id', 'session_id', 'server_run_id', 'server_session_id', 'server_run_error_id'],
}

export const initialSchemaMigrations: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    async up(db) {
      await db.schema
        .createTable('instances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
        .addColumn('secret_preview', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('sessions_instance_id').on('sessions').columns(['instance_id', 'id']).execute()
      await db.schema
        .createTable('servers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('server_versions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('server_id', 'text', (c) => c.notNull().references('servers.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('server_deployments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
        .addColumn('server_id', 'text', (c) => c.notNull().references('servers.id'))
        .addColumn('name', 'text')
        .addColumn('description', 'text')
        .addColumn('metadata_json', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('server_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id'))
        .addColumn('server_deployment_id', 'text', (c) => c.notNull().references('server_deployments.id'))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('mcp_json', 'text', (c) => c.notNull())
        .addColumn('client_message_count', 'integer', (c) => c.notNull())
        .addColumn('server_message_count', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('server_runs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('server_session_id', 'text', (c) => c.notNull().references('server_sessions.id'))
        .addColumn('server_deployment_id', 'text', (c) => c.notNull().references('server_deployments.id'))
        .addColumn('server_version_id', 'text', (c) => c.notNull().references('server_versions.id'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('stopped_at', 'text')
        .execute()
      await db.schema
        .createTable('server_run_errors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('server_run_id', 'text', (c) => c.notNull().references('server_runs.id'))
        .addColumn('code', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('metadata_json', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('session_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id'))
        .addColumn('server_run_id', 'text', (c) => c.references('server_runs.id'))
        .addColumn('server_session_id', 'text', (c) => c.references('server_sessions.id'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('server_run_error_id', 'text', (c) => c.references('server_run_errors.id'))
        .addColumn('log_lines_json', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      // Listing is a keyset scan over (session_id, id), narrowed by one filter at a time.
      await db.schema
        .createIndex('session_events_session_id')
        .on('session_events')
        .columns(['session_id', 'id'])
        .execute()
      await db.schema
        .createIndex('session_events_server_run_id')
        .on('session_events')
        .columns(['session_id', 'server_run_id', 'id'])
        .execute()
      await db.schema
        .createIndex('session_events_server_session_id')
        .on('session_events')
        .columns(['session_id', 'server_session_id', 'id'])
        .execute()
      await db.schema
        .createIndex('session_events_type')
        .on('session_events')
        .columns(['session_id', 'type', 'id'])
        .execute()
    },
  },
  {
    version: 2,
    name: 'ids compare byte-wise on PostgreSQL',
    // Keyset pagination needs SQL to order ids as JavaScript does; on a PostgreSQL database
    // whose default collation is not C, version 1 left that to chance. SQLite already compares
    // text byte-wise, so there this changes nothing.
    async up(db, dialect) {
      if (dialect !== 'postgres') return
      for (const [table, columns] of Object.entries(ID_COLUMNS)) {
        let alter = db.schema.alterTable(table).alterColumn(columns[0]!, (c) => c.setDataType(idType(dialect)))
        for (const column of columns.slice(1)) alter = alter.alterColumn(column, (c) => c.setDataType(idType(dialect)))
        await alter.execute()
      }
    },
  },
  {
    version: 3,
    name: 'a count of changes to what a run shows, on SQLite',
    // The store keeps the runs it has read until something a run shows changes: the run, its
    // server session, its deployment or its server. Triggers count the updates and deletes of
    // those rows, whoever makes them (another process, an older version of this one, plain SQL),
    // in the writing transaction itself, so the count and the change are seen together. A new
    // row changes no row read before, so inserts are not counted: appending events and starting
    // runs, the store's most frequent writes, leave the count alone. PostgreSQL reads runs for
    // every response and keeps none, so there a count would only be a row every writer must lock.
    async up(db, dialect) {
      if (dialect !== 'sqlite') return
      await db.schema
        .createTable('run_changes')
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('n', 'integer', (c) => c.notNull())
        .execute()
      await db.insertInto('run_changes').values({ id: 1, n: 0 }).execute()
      // The tables a run's JSON shows columns of (SqlStore#runs), written here so that the
      // migration stays what it was when it shipped.
      for (const table of ['server_runs', 'server_sessions', 'server_deployments', 'servers']) {
        for (const event of ['update', 'delete']) {
          await sql
            .raw(
              `create trigger ${table}_${event}_counts after ${event} on ${table} begin update run_changes set n = n + 1; end`,
            )
            .execute(db)
        }
      }
    },
  },
  {
    version: 4,
    name: 'the write half: sessions as objects, idempotency keys, keys that write',
    async up(db, dialect) {
      // A session is now written through the API and shown as an object of its own.
      await db.schema
        .alterTable('sessions')
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
        .execute()
      await db.schema
        .alterTable('sessions')
        .addColumn('metadata_json', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute()
      await db.schema.alterTable('sessions').addColumn('updated_at', 'text').execute()
      await db
        .updateTable('sessions')
        .set({ updated_at: sql`created_at` })
        .execute()
      // The answers to requests sent with an Idempotency-Key, per instance, for replaying them.
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('instance_id', idType(dialect), (c) => c.notNull().references('instances.id'))
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('status', 'integer')
        .addColumn('body', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('locked_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['instance_id', 'key'])
        .execute()
      await db.schema.createIndex('idempotency_keys_created_at').on('idempotency_keys').column('created_at').execute()
      // The rate limiter that every API process shares on PostgreSQL (rate-limiter-flexible's
      // RateLimiterPostgres, whose table this is, in its own layout). SQLite has one process.
      if (dialect === 'postgres') {
        await db.schema
          .createTable('rate_limits')
          .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
          .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('expire', 'bigint')
          .execute()
      }
      // Secret keys now write their instance's sessions as well as read them.
      await db
        .updateTable('api_keys')
        .set({ scopes: 'sessions:read sessions:write' })
        .where('kind', '=', 'secret')
        .where('scopes', '=', 'sessions:read')
        .execute()
    },
  },
  {
    version: 5,
    name: 'a count of changes to what a run shows, on PostgreSQL too',
    // Migration 3's count, on PostgreSQL: with it, the API keeps the runs it has read until
    // something a run shows changes, and reads the count in the same query as a page of ids, so
    // a page whose events and runs are kept costs one round trip. A statement-level trigger per
    // table, so a write that changes many rows counts once; only updates and deletes of runs and
    // what they show take the count's row lock (stopping a run), never appending events.
    async up(db, dialect) {
      if (dialect !== 'postgres') return
      await db.schema
        .createTable('run_changes')
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('n', 'bigint', (c) => c.notNull())
        .execute()
      await db.insertInto('run_changes').values({ id: 1, n: 0 }).execute()
      await sql
        .raw(
          'create function run_changes_count() returns trigger language plpgsql as $$ begin update run_changes set n = n + 1 where id = 1; return null; end $$',
        )
        .execute(db)
      for (const table of ['server_runs', 'server_sessions', 'server_deployments', 'servers']) {
        await sql
          .raw(
            `create trigger ${table}_changes_count after update or delete on ${table} for each statement execute function run_changes_count()`,
          )
          .execute(db)
      }
    },
  },
]
