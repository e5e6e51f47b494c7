// Migration 6: Idempotency-Key answers as records, and PostgreSQL's append in one statement.
import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { idType } from '../dialect.js'
import type { Migration } from './migration.js'

export const idempotencyAppendMigrations: Migration[] = [
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
]
