import SQLite from 'better-sqlite3'
import { openStore, type SqlStore } from '@session-events/api'
import { compactClosedPartitions } from '@session-events/api/internal/store/retention-compaction.js'
import { sql, type CompiledQuery } from 'kysely'
import pg from 'pg'
import type { Dataset } from './datasets.js'
import { ensureSchema, vacuumSchema } from './pg.js'

// Storage: what an event costs on disk, table and indexes, at a million events (the growth
// suite's SQLite session, and the same shape in PostgreSQL), measured by SQLite's dbstat and by
// PostgreSQL's pg_relation_size / pg_table_size / pg_indexes_size. Then which index each of the
// API's reads uses (EXPLAIN), on both stores: an index no read uses is one that could go (the
// index on id alone was, proven here by EXPLAIN ANALYZE with it and without it until migration 13
// keyed the table by (session_id, id) instead). On PostgreSQL, at a million events in one session
// and on two tables made for it, analysed but not yet vacuumed: sessions written at the same time
// (ids interleaved, as in production) and one after another (as the seeded datasets are).

/** The reads whose plans are checked, named as the report shows them. */
const READS = [
  'first page',
  'page after an event',
  'its probe before it',
  'page before an event',
  'its probe after it',
  'first page, order=desc',
  'server_run_id filter',
  'server_session_id filter',
  'type=server_run_error',
  'type=server_logs',
  'events of a page (sessionEvents)',
  'last id of the session (appending)',
] as const

export interface StorageObject {
  name: string
  kind: 'table' | 'index'
  bytes: number
}

export interface StoreStorage {
  dataset: string
  events: number
  /** The table (with its overflow or TOAST pages), then each index. */
  objects: StorageObject[]
  tableBytes: number
  indexBytes: number
  totalBytes: number
  bytesPerEvent: { table: number; indexes: number; total: number }
  /** The average size of an event's log lines as stored (JSON text), for scale. */
  logLinesBytesPerEvent: number
}

export interface PlanRow {
  store: 'sqlite' | 'postgres'
  dataset: string
  read: string
  /** Indexes of session_events the plan uses (on PostgreSQL, its partitions'). */
  indexes: string[]
  /** The same as the table's own indexes (on PostgreSQL, the partitioned index each belongs to). */
  roots: string[]
  plan: string
}

export interface StorageResult {
  sqlite: StoreStorage | null
  postgres: StoreStorage | null
  /**
   * The same PostgreSQL dataset once the pruner has compacted its partitions (their indexes
   * rebuilt full, as it does to each once its day has passed: retention-compaction.ts). Runs of
   * before it have none.
   */
  postgresCompacted?: StoreStorage | null
  plans: PlanRow[]
  /** Indexes of session_events that no read uses, per store. */
  unused: { sqlite: string[]; postgres: string[] }
  skipped: string[]
}

type Log = (line: string) => void

// ---- sizes ----

function sqliteStorage(dataset: Dataset): StoreStorage {
  const db = new SQLite(dataset.file, { readonly: true, fileMustExist: true })
  try {
    const indexes = db
      .prepare(`select name from sqlite_master where type = 'index' and tbl_name = 'session_events' order by name`)
      .pluck()
      .all() as string[]
    const size = db.prepare(`select sum(pgsize) from dbstat where name = ? and aggregate = 1`).pluck()
    const objects: StorageObject[] = [
      { name: 'session_events', kind: 'table', bytes: Number(size.get('session_events')) },
      ...indexes.map((name): StorageObject => ({ name, kind: 'index', bytes: Number(size.get(name)) })),
    ]
    const events = Number(db.prepare('select count(*) from session_events').pluck().get())
    const lines = Number(db.prepare('select avg(length(log_lines_json)) from session_events').pluck().get())
    return totals(dataset.name, events, objects, lines)
  } finally {
    db.close()
  }
}

async function pgStorage(dataset: Dataset): Promise<StoreStorage> {
  const client = new pg.Client({ connectionString: dataset.databaseUrl, application_name: 'session-events-bench' })
  await client.connect()
  try {
    await client.query('vacuum analyze session_events')
    // session_events is partitioned (migration 8): its size is its partitions', each index's its
    // partitions' indexes'.
    const table = await client.query<{ bytes: string; events: string; lines: string }>(
      `select (select sum(pg_table_size(relid)) from pg_partition_tree('session_events') where isleaf) as bytes,
              (select count(*) from session_events) as events,
              (select avg(octet_length(log_lines_json)) from session_events) as lines`,
    )
    const indexes = await client.query<{ name: string; bytes: string }>(
      `select c.relname as name,
              (select sum(pg_relation_size(t.relid)) from pg_partition_tree(i.indexrelid) t where t.isleaf) as bytes
         from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'session_events'::regclass order by c.relname`,
    )
    const objects: StorageObject[] = [
      {
        name: 'session_events (heap, TOAST, free space and visibility maps)',
        kind: 'table',
        bytes: Number(table.rows[0]!.bytes),
      },
      ...indexes.rows.map((r): StorageObject => ({ name: r.name, kind: 'index', bytes: Number(r.bytes) })),
    ]
    return totals(dataset.name, Number(table.rows[0]!.events), objects, Number(table.rows[0]!.lines))
  } finally {
    await client.end()
  }
}

function totals(
  dataset: string,
  events: number,
  objects: StorageObject[],
  logLinesBytesPerEvent: number,
): StoreStorage {
  const tableBytes = objects.filter((o) => o.kind === 'table').reduce((n, o) => n + o.bytes, 0)
  const indexBytes = objects.filter((o) => o.kind === 'index').reduce((n, o) => n + o.bytes, 0)
  return {
    dataset,
    events,
    objects,
    tableBytes,
    indexBytes,
    totalBytes: tableBytes + indexBytes,
    bytesPerEvent: {
      table: tableBytes / events,
      indexes: indexBytes / events,
      total: (tableBytes + indexBytes) / events,
    },
    logLinesBytesPerEvent,
  }
}

// ---- the reads, compiled by the API's own store ----

interface Shape {
  sessionId: string
  middle: string
  runId: string
  serverSessionId: string
}

async function shapeOf(store: SqlStore, sessionId: string): Promise<Shape> {
  const run = await store.db
    .selectFrom('server_runs as r')
    .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
    .select(['r.id', 'r.server_session_id'])
    .where('ss.session_id', '=', sessionId)
    .orderBy('r.id')
    .limit(1)
    .executeTakeFirstOrThrow()
  const { n } = await store.db
    .selectFrom('session_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('session_id', '=', sessionId)
    .executeTakeFirstOrThrow()
  const middle = await store.db
    .selectFrom('session_events')
    .select('id')
    .where('session_id', '=', sessionId)
    .orderBy('id')
    .offset(Math.floor(Number(n) / 2))
    .limit(1)
    .executeTakeFirstOrThrow()
  return { sessionId, middle: middle.id, runId: run.id, serverSessionId: run.server_session_id }
}

/** Every read of READS, as the API's store compiles it for this database. */
async function compiledReads(store: SqlStore, shape: Shape): Promise<[string, CompiledQuery][]> {
  const base = { sessionId: shape.sessionId, limit: 20, order: 'asc' as const }
  const list = (query: Parameters<SqlStore['reader']['compileListEventIds']>[0]) =>
    store.reader.compileListEventIds(query)
  const [after, afterProbe] = list({ ...base, position: { direction: 'after', id: shape.middle } })
  const [before, beforeProbe] = list({ ...base, position: { direction: 'before', id: shape.middle } })
  const page = await store.reader.listEventIds({ ...base, position: { direction: 'after', id: shape.middle } })
  // The same queries as the store's sessionEvents() and the writer's allocateEventIds().
  const events = store.db
    .selectFrom('session_events as e')
    .leftJoin('server_run_errors as x', 'x.id', 'e.server_run_error_id')
    .selectAll('e')
    .where('e.session_id', '=', shape.sessionId)
    .where('e.id', 'in', page.ids)
    .compile()
  const lastId = store.db
    .selectFrom('session_events')
    .select('id')
    .where('session_id', '=', shape.sessionId)
    .orderBy('id', 'desc')
    .limit(1)
    .compile()
  const reads: CompiledQuery[] = [
    list(base)[0]!,
    after!,
    afterProbe!,
    before!,
    beforeProbe!,
    list({ ...base, order: 'desc' })[0]!,
    list({ ...base, serverRunIds: [shape.runId] })[0]!,
    list({ ...base, serverSessionIds: [shape.serverSessionId] })[0]!,
    list({ ...base, types: ['server_run_error'] })[0]!,
    list({ ...base, types: ['server_logs'] })[0]!,
    events,
    lastId,
  ]
  return READS.map((name, i) => [name, reads[i]!])
}

function sqlitePlans(dataset: Dataset, reads: [string, CompiledQuery][]): PlanRow[] {
  const db = new SQLite(dataset.file, { readonly: true, fileMustExist: true })
  try {
    return reads.map(([read, query]) => {
      const details = (
        db.prepare(`explain query plan ${query.sql}`).all(...(query.parameters as unknown[])) as { detail: string }[]
      ).map((r) => r.detail)
      const indexes = [
        ...new Set(details.flatMap((d) => [...d.matchAll(/USING (?:COVERING )?INDEX (\S+)/g)].map((m) => m[1]!))),
      ]
      return {
        store: 'sqlite' as const,
        dataset: dataset.name,
        read,
        indexes,
        roots: indexes,
        plan: details.join('; '),
      }
    })
  } finally {
    db.close()
  }
}

interface PgPlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  Plans?: PgPlanNode[]
}
const planNodes = (node: PgPlanNode): PgPlanNode[] => [node, ...(node.Plans ?? []).flatMap(planNodes)]
const describe = (node: PgPlanNode): string =>
  `${node['Node Type']}${node['Index Name'] ? ` using ${node['Index Name']}` : node['Relation Name'] ? ` on ${node['Relation Name']}` : ''}` +
  (node.Plans?.length ? ` → ${node.Plans.map(describe).join(', ')}` : '')

async function pgExplain(client: pg.Client, query: CompiledQuery) {
  const result = await client.query<{ 'QUERY PLAN': [{ Plan: PgPlanNode }] }>(
    `explain (format json) ${query.sql}`,
    query.parameters as unknown[],
  )
  const [top] = result.rows[0]!['QUERY PLAN']
  const nodes = planNodes(top.Plan)
  return {
    indexes: [
      ...new Set(nodes.filter((n) => n['Index Name']?.startsWith('session_events')).map((n) => n['Index Name']!)),
    ],
    plan: describe(top.Plan),
  }
}

/** The index each read uses (EXPLAIN). */
async function pgPlans(
  dataset: { name: string; databaseUrl: string },
  reads: [string, CompiledQuery][],
): Promise<PlanRow[]> {
  const client = new pg.Client({ connectionString: dataset.databaseUrl, application_name: 'session-events-bench' })
  await client.connect()
  try {
    const plans: PlanRow[] = []
    for (const [read, query] of reads) {
      const x = await pgExplain(client, query)
      const { rows } = await client.query<{ root: string }>(
        'select distinct coalesce(pg_partition_root(i::regclass), i::regclass)::text as root from unnest($1::text[]) as i',
        [x.indexes],
      )
      const roots = rows.map((r) => r.root)
      plans.push({ store: 'postgres', dataset: dataset.name, read, indexes: x.indexes, roots, plan: x.plan })
    }
    return plans
  } finally {
    await client.end()
  }
}

/**
 * A table made for the plans, in a schema of its own, written in one INSERT … SELECT (a second or
 * two) and made again on every run, analysed but not yet vacuumed, as a table is between two
 * passes of autovacuum:
 *   at once            40 sessions written at the same time, 100,000 events spread over them in
 *                      id order (half in the first session): ids interleaved, as in production;
 *   one after another  10 sessions of 10,000 events, each session's after the last one's, as the
 *                      seeded datasets are (and as a store with few, long sessions is).
 * Each session has two server sessions of two runs each.
 */
async function planTable(
  kind: 'at once' | 'one after another',
): Promise<{ name: string; databaseUrl: string; store: SqlStore; sessionId: string; firstSessionId: string }> {
  const atOnce = kind === 'at once'
  const schema = atOnce ? 'bench_interleaved' : 'bench_sequential'
  const databaseUrl = await ensureSchema(schema, { fresh: true })
  const store = await openStore(databaseUrl)
  const { id: instanceId } = await store.admin.createInstance({ name: schema })
  const { id: serverId } = await store.seeding.createServer({ name: 'S', description: null, type: 'public' })
  const { id: versionId } = await store.seeding.createServerVersion({ serverId })
  const { id: deploymentId } = await store.seeding.createServerDeployment({
    instanceId,
    serverId,
    name: null,
    description: null,
  })
  const sessions = atOnce ? 40 : 10
  for (let s = 0; s < sessions; s++) {
    const { id: sessionId } = await store.writer.createSession({ instanceId })
    for (let k = 0; k < 2; k++) {
      const { id: serverSessionId } = await store.seeding.createServerSession({
        sessionId,
        serverDeploymentId: deploymentId,
        mcp: { object: 'mcp', version: '2025-03-26', connection_type: 'streamable_http', client: null, server: null },
      })
      for (let r = 0; r < 2; r++)
        await store.seeding.createServerRun({ serverSessionId, serverVersionId: versionId, type: 'hosted' })
    }
  }
  const lines = JSON.stringify([
    { type: 'stdout', line: 'tools/call search_issues {"query":"is:open label:bug","per_page":20}' },
    { type: 'stderr', line: 'warn: slow response from upstream (2.4 s)' },
  ])
  // Which run (1-based, runs ordered by session then id) the g-th event belongs to.
  const pick = atOnce
    ? sql`1 + case when g % 2 = 0 then (g / 2) % 4 else g % runs.n end`
    : sql`1 + (g / 10000) * 4 + g % 4`
  await sql`
    insert into session_events (id, session_id, server_run_id, server_session_id, type, server_run_error_id, log_lines_json, created_at)
    select 'sev_' || lpad(to_hex(g), 9, '0') || substr(md5(g::text), 1, 13),
           runs.session_ids[pick.k], runs.ids[pick.k], runs.server_session_ids[pick.k], 'server_logs', null, ${lines},
           to_char(timestamp '2025-07-01' + g * interval '250 milliseconds', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    from (
      select array_agg(r.id order by ss.session_id, r.id) as ids, array_agg(r.server_session_id order by ss.session_id, r.id) as server_session_ids,
             array_agg(ss.session_id order by ss.session_id, r.id) as session_ids, count(*)::int as n
      from server_runs r join server_sessions ss on ss.id = r.server_session_id
    ) as runs
    cross join generate_series(0, 99999) as g
    cross join lateral (select ${pick} as k) as pick`.execute(store.db)
  await vacuumSchema(schema, { analyzeOnly: true })
  // The session read: one in the middle of the table, or the last one written (whose events the
  // index on id alone reaches only after every other session's).
  const sessionId = atOnce
    ? (await store.db.selectFrom('sessions').select('id').orderBy('id').limit(1).offset(20).executeTakeFirstOrThrow())
        .id
    : (
        await store.db
          .selectFrom('session_events')
          .select('session_id')
          .orderBy('id', 'desc')
          .limit(1)
          .executeTakeFirstOrThrow()
      ).session_id
  const firstSessionId = (
    await store.db
      .selectFrom('session_events')
      .select('session_id')
      .orderBy('id', 'asc')
      .limit(1)
      .executeTakeFirstOrThrow()
  ).session_id
  const name = atOnce
    ? '40 sessions written at once, 100,000 events (analysed, not vacuumed)'
    : '10 sessions written one after another, 10,000 events each (analysed, not vacuumed); the last one read'
  return { name, databaseUrl, store, sessionId, firstSessionId }
}

export async function storageSuite(
  datasets: { sqlite: Dataset; postgres?: Dataset | undefined },
  log: Log,
): Promise<StorageResult> {
  const skipped: string[] = []
  log(`  SQLite: dbstat of ${datasets.sqlite.name}`)
  const sqlite = sqliteStorage(datasets.sqlite)
  const sqliteStore = await openStore(datasets.sqlite.databaseUrl)
  let plans: PlanRow[]
  try {
    plans = sqlitePlans(
      datasets.sqlite,
      await compiledReads(sqliteStore, await shapeOf(sqliteStore, datasets.sqlite.sessionList[0]!.id)),
    )
  } finally {
    await sqliteStore.close()
  }

  let postgres: StoreStorage | null = null
  let postgresCompacted: StoreStorage | null = null
  if (datasets.postgres) {
    log(`  PostgreSQL: sizes of ${datasets.postgres.name}`)
    postgres = await pgStorage(datasets.postgres)
    const pgStore = await openStore(datasets.postgres.databaseUrl)
    let reads: [string, CompiledQuery][]
    try {
      reads = await compiledReads(pgStore, await shapeOf(pgStore, datasets.postgres.sessionList[0]!.id))
      // As the pruner leaves each partition once its day has passed: every partition at once
      // here, today's included, so that the same events are measured both ways.
      log('  PostgreSQL: compacting its partitions as the pruner does once their day has passed')
      await compactClosedPartitions(pgStore.db, { beforeMs: Number.POSITIVE_INFINITY })
    } finally {
      await pgStore.close()
    }
    postgresCompacted = await pgStorage(datasets.postgres)
    plans.push(...(await pgPlans(datasets.postgres, reads)))
    log('  PostgreSQL: the reads on two tables made for them')
    for (const kind of ['at once', 'one after another'] as const) {
      const made = await planTable(kind)
      let madeReads: [string, CompiledQuery][]
      try {
        madeReads = await compiledReads(made.store, await shapeOf(made.store, made.sessionId))
        // Appending to the oldest session: its last id, which the index on id alone reaches from the newest event down.
        if (kind === 'one after another') {
          madeReads.push([
            'last id of the first session (appending to it)',
            made.store.db
              .selectFrom('session_events')
              .select('id')
              .where('session_id', '=', made.firstSessionId)
              .orderBy('id', 'desc')
              .limit(1)
              .compile(),
          ])
        }
      } finally {
        await made.store.close()
      }
      plans.push(...(await pgPlans(made, madeReads)))
    }
  } else {
    skipped.push('PostgreSQL: no server to reach')
  }

  const unusedOf = (store: 'sqlite' | 'postgres', all: StorageObject[] | undefined) => {
    const usedHere = new Set(plans.filter((p) => p.store === store).flatMap((p) => p.roots))
    return (all ?? []).filter((o) => o.kind === 'index' && !usedHere.has(o.name)).map((o) => o.name)
  }
  return {
    sqlite,
    postgres,
    postgresCompacted,
    plans,
    unused: { sqlite: unusedOf('sqlite', sqlite.objects), postgres: unusedOf('postgres', postgres?.objects) },
    skipped,
  }
}
