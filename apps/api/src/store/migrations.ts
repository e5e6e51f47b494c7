import { createHash } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import type { Database } from './db.js'
import { dialectOf, idType, inMigrationTransaction, type DialectName } from './dialect.js'
import { ensureEventPartitions } from './retention-partitions.js'

// Versioned migrations, applied in order at start, in one transaction, and recorded in
// schema_migrations. Written once with Kysely's schema builder, so they run on SQLite and
// PostgreSQL alike; what must differ comes from dialect.ts. Never edit a migration that has
// shipped: add the next one.

export interface Migration {
  version: number
  name: string
  /** Runs on its own once the migrations before it have committed, for what a transaction refuses (VACUUM). */
  outsideTransaction?: boolean
  up(db: Kysely<any>, dialect: DialectName): Promise<void>
}

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

export const migrations: Migration[] = [
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
  {
    version: 6,
    name: 'Idempotency-Key answers as records; an append in one statement on PostgreSQL',
    // The answer to a request sent with an Idempotency-Key was a copy of the whole response,
    // kept by a transaction of its own after the write's. Now it is kept in the write's own
    // transaction (store/idempotency.ts), as a record of about a hundred bytes: the key and the
    // request hashed, the status, and the resource a success named (a replay shows it as it is
    // then) or the body of a refusal. The answers of the last 24 hours move over; older ones were
    // past their time anyway.
    //
    // On PostgreSQL, an append of the API (claim the key, lock the session, check the run, take
    // the next id, insert the event, keep the answer, notify) becomes one function, called in one
    // statement: one round trip and one commit (store/append.ts). Each statement of a plpgsql
    // function sees what committed before it, so the run is checked after the session's lock is
    // taken, as the store's other writes do. Its id order is event-log.ts's, and next_event_id is
    // ids.ts's nextId; test/append.test.ts holds them to each other.
    async up(db, dialect) {
      const binary = dialect === 'postgres' ? 'bytea' : 'blob'
      let table = db.schema
        .createTable('idempotency_answers')
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('status', 'smallint', (c) => c.notNull())
        .addColumn('key_hash', binary, (c) => c.notNull())
        .addColumn('fingerprint', binary, (c) => c.notNull())
        .addColumn('resource_id', idType(dialect))
        .addColumn('refusal', 'text')
        .addPrimaryKeyConstraint('idempotency_answers_pk', ['key_hash'])
      // SQLite: the row lives in its primary key's b-tree, not beside it in a second one.
      if (dialect === 'sqlite') table = table.modifyEnd(sql`without rowid`)
      await table.execute()
      // For removing expired answers. PostgreSQL's rows go in the order they are made, so a BRIN
      // index (a few pages for millions of rows) finds the old ones.
      const index = db.schema.createIndex('idempotency_answers_created_ms').on('idempotency_answers')
      await (dialect === 'postgres' ? index.using('brin') : index).column('created_ms').execute()

      const dayAgo = new Date(Date.now() - 24 * 60 * 60 * 1000).toISOString()
      const successId =
        dialect === 'postgres' ? sql<string>`(body::json ->> 'id')` : sql<string>`json_extract(body, '$.id')`
      let after: [string, string, string] | undefined
      for (;;) {
        let page = db
          .selectFrom('idempotency_keys')
          .select(['created_at', 'instance_id', 'key', 'fingerprint', 'status'])
          .select((eb) =>
            eb
              .case()
              .when('status', '<', 300)
              .then(successId)
              .else(sql<string>`null`)
              .end()
              .as('resource_id'),
          )
          .select((eb) =>
            eb
              .case()
              .when('status', '<', 300)
              .then(sql<string>`null`)
              .else(eb.ref('body'))
              .end()
              .as('refusal'),
          )
          .where('status', 'is not', null)
          .where('created_at', '>=', dayAgo)
        if (after)
          page = page.where((eb) =>
            eb(eb.refTuple('created_at', 'instance_id', 'key'), '>', eb.tuple(after![0], after![1], after![2])),
          )
        const rows = await page.orderBy('created_at').orderBy('instance_id').orderBy('key').limit(1000).execute()
        if (rows.length === 0) break
        await db
          .insertInto('idempotency_answers')
          .values(
            rows.map((r) => ({
              created_ms: Date.parse(r.created_at),
              status: Number(r.status),
              key_hash: createHash('sha256').update(`${r.instance_id}\n${r.key}`).digest().subarray(0, 16),
              fingerprint: Buffer.from(String(r.fingerprint).slice(0, 32), 'hex'),
              resource_id: r.resource_id,
              refusal: r.refusal,
            })),
          )
          .execute()
        const last = rows.at(-1)!
        after = [last.created_at, last.instance_id, last.key]
      }
      await db.schema.dropTable('idempotency_keys').execute()

      if (dialect !== 'postgres') return
      await sql
        .raw(
          `create function next_event_id(id text) returns text language plpgsql immutable strict as $$
declare
  digits constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  v_next text := id;
  i int := length(id);
  d int;
begin
  -- The random part (the last 13 characters) counted up by one, in base 62.
  while i > length(id) - 13 loop
    d := strpos(digits, substr(v_next, i, 1));
    if d < 62 then
      return overlay(v_next placing substr(digits, d + 1, 1) from i for 1);
    end if;
    v_next := overlay(v_next placing '0' from i for 1);
    i := i - 1;
  end loop;
  raise exception 'no id after %', id;
end $$`,
        )
        .execute(db)
      await sql
        .raw(
          `create function append_session_event(
  p_session_id text, p_server_run_id text, p_made_id text, p_log_lines_json text, p_created_at text,
  p_channel text, p_key_hash bytea, p_lock bigint, p_fingerprint bytea, p_status smallint,
  p_now_ms bigint, p_kept_since_ms bigint
) returns table (
  outcome text, event_id text, event_server_session_id text, run_status text, runs_version bigint,
  kept_status smallint, kept_resource_id text, kept_refusal text
) language plpgsql as $$
declare
  v_kept record;
  v_run record;
  v_last text collate "C";
  v_id text collate "C";
begin
  -- The Idempotency-Key: held by a write in flight (in_use), answered before for this request
  -- (answered) or another (reused), or free; an answer older than p_kept_since_ms is gone.
  if p_key_hash is not null then
    if not pg_try_advisory_xact_lock(p_lock) then
      outcome := 'in_use';
      return next;
      return;
    end if;
    select a.fingerprint, a.status, a.resource_id, a.refusal, a.created_ms into v_kept
      from idempotency_answers a where a.key_hash = p_key_hash;
    if found and v_kept.created_ms < p_kept_since_ms then
      delete from idempotency_answers a where a.key_hash = p_key_hash;
    elsif found then
      outcome := case when v_kept.fingerprint = p_fingerprint then 'answered' else 'reused' end;
      kept_status := v_kept.status;
      kept_resource_id := v_kept.resource_id;
      kept_refusal := v_kept.refusal;
      return next;
      return;
    end if;
  end if;
  -- The session's lock, then its run as it is now.
  perform 1 from sessions s where s.id = p_session_id for update;
  select r.id, r.server_session_id, r.status, ss.session_id into v_run
    from server_runs r join server_sessions ss on ss.id = r.server_session_id
    where r.id = p_server_run_id;
  if not found or v_run.session_id <> p_session_id then
    outcome := 'no_run';
    return next;
    return;
  end if;
  if v_run.status <> 'active' then
    outcome := 'stopped';
    run_status := v_run.status;
    return next;
    return;
  end if;
  -- An id above the session's last one.
  select e.id into v_last from session_events e where e.session_id = p_session_id order by e.id desc limit 1;
  v_id := case when v_last is null or p_made_id collate "C" > v_last then p_made_id else next_event_id(v_last) end;
  insert into session_events
    (id, session_id, server_run_id, server_session_id, type, server_run_error_id, log_lines_json, created_at)
    values (v_id, p_session_id, v_run.id, v_run.server_session_id, 'server_logs', null, p_log_lines_json, p_created_at);
  if p_key_hash is not null then
    insert into idempotency_answers (created_ms, status, key_hash, fingerprint, resource_id, refusal)
      values (p_now_ms, p_status, p_key_hash, p_fingerprint, v_id, null);
  end if;
  perform pg_notify(p_channel, p_session_id);
  outcome := 'appended';
  event_id := v_id;
  event_server_session_id := v_run.server_session_id;
  select c.n into runs_version from run_changes c where c.id = 1;
  return next;
end $$`,
        )
        .execute(db)
    },
  },
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

/**
 * Applies the migrations the database has not seen yet, in order; returns how many ran. They run
 * in one transaction, so a failure leaves the schema as it was, and API processes that start
 * together migrate one after the other (see inMigrationTransaction); one that cannot run in a
 * transaction (SQLite's VACUUM) runs on its own, once those before it have committed. Then, on
 * PostgreSQL, the partitions of the days ahead are made (retention-partitions.ts), whatever
 * process starts, so that writes find them. `upTo`: no migration past this version (for tests
 * of a migration).
 */
export async function migrate(db: Kysely<Database>, options: { upTo?: number } = {}): Promise<number> {
  const dialect = dialectOf(db)
  let ran = 0
  for (;;) {
    const outside = await inMigrationTransaction(db, async (trx) => {
      await trx.schema
        .createTable('schema_migrations')
        .ifNotExists()
        .addColumn('version', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('applied_at', 'text', (c) => c.notNull())
        .execute()
      const applied = new Set(
        (await trx.selectFrom('schema_migrations').select('version').execute()).map((r) => Number(r.version)),
      )
      for (const migration of migrations) {
        if (applied.has(migration.version) || migration.version > (options.upTo ?? Infinity)) continue
        if (migration.outsideTransaction) return migration
        await migration.up(trx, dialect)
        await trx
          .insertInto('schema_migrations')
          .values({ version: migration.version, name: migration.name, applied_at: new Date().toISOString() })
          .execute()
        ran += 1
      }
      return undefined
    })
    if (!outside) break
    await outside.up(db, dialect)
    // Another process starting at the same time may have run it too: it is written to be run twice.
    await db
      .insertInto('schema_migrations')
      .values({ version: outside.version, name: outside.name, applied_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('version').doNothing())
      .execute()
    ran += 1
  }
  if (dialect === 'postgres') await ensureEventPartitions(db, { now: new Date() })
  return ran
}
