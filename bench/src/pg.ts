import { readFileSync } from 'node:fs'
import pg from 'pg'

// The machine's PostgreSQL server, as the benchmark uses it: every dataset in a schema of its
// own whose name starts with `bench_` (created when missing), named in the connection URL by
// `options=-c search_path=…`, so that the API, the peers and the writers all find it without a
// setting of their own. The benchmark drops and recreates only its own schemas, never another.
// The server is shared (with CI among others): every schema a run makes or reuses is noted
// (usedSchema), and main.ts drops them all at the end of the run unless told to keep them.
//
// BENCH_DATABASE_URL names the server (default: postgres://postgres@127.0.0.1:5432/test).

export const PG_BASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const SCHEMA = /^bench_[a-z0-9_]+$/

/** The URL of the server with `schema` as the search path. */
export function schemaUrl(schema: string): string {
  if (!SCHEMA.test(schema)) throw new Error(`not a benchmark schema: ${schema}`)
  const url = new URL(PG_BASE_URL)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return url.toString()
}

async function withClient<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: PG_BASE_URL,
    application_name: 'session-events-bench',
    connectionTimeoutMillis: 3000,
  })
  await client.connect()
  try {
    return await run(client)
  } finally {
    await client.end().catch(() => {})
  }
}

export interface PgServer {
  /** `PostgreSQL 15.20 …`, as the server says. */
  version: string
  settings: Record<string, string>
}

/** The server and the settings that bear on the figures; null when there is no server to reach. */
export async function pgServer(): Promise<PgServer | null> {
  try {
    return await withClient(async (client) => {
      const version = (await client.query<{ version: string }>('select version()')).rows[0]!.version
      const settings: Record<string, string> = {}
      for (const name of ['shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'work_mem']) {
        settings[name] = (await client.query<Record<string, string>>(`show ${name}`)).rows[0]![name]!
      }
      return { version, settings }
    })
  } catch {
    return null
  }
}

/** The schemas this run made or reused, to drop at its end (dropUsedSchemas). */
const used = new Set<string>()

/** Notes a schema this run uses without making it (a dataset seeded by an earlier run). */
export function usedSchema(schema: string): void {
  if (!SCHEMA.test(schema)) throw new Error(`not a benchmark schema: ${schema}`)
  used.add(schema)
}

/** Creates the schema if it is missing; with `fresh`, drops it first (benchmark schemas only). */
export async function ensureSchema(schema: string, options: { fresh?: boolean } = {}): Promise<string> {
  const url = schemaUrl(schema)
  used.add(schema)
  await withClient(async (client) => {
    if (options.fresh) await client.query(`drop schema if exists ${schema} cascade`)
    await client.query(`create schema if not exists ${schema}`)
  })
  return url
}

/** Drops one of the benchmark's own schemas (bench_*, nothing else). */
export async function dropSchema(schema: string): Promise<void> {
  if (!SCHEMA.test(schema)) throw new Error(`not a benchmark schema: ${schema}`)
  await withClient((client) => client.query(`drop schema if exists ${schema} cascade`))
}

/** Drops every schema this run made or reused and still there (a suite drops its own fresh ones); the names dropped. */
export async function dropUsedSchemas(): Promise<string[]> {
  if (used.size === 0) return []
  const there = await withClient(async (client) => {
    const rows = await client.query<{ nspname: string }>(
      'select nspname from pg_namespace where nspname = any($1) order by nspname',
      [[...used]],
    )
    return rows.rows.map((r) => r.nspname)
  })
  for (const schema of there) await dropSchema(schema)
  used.clear()
  return there
}

/** Whether the schema holds this many events and the key: a dataset seeded before is still whole. */
export async function schemaHolds(schema: string, expect: { events: number; secretHash: string }): Promise<boolean> {
  try {
    return await withClient(async (client) => {
      const events = await client.query<{ n: string }>(`select count(*) as n from ${schema}.session_events`)
      const key = await client.query(`select 1 from ${schema}.api_keys where secret_hash = $1`, [expect.secretHash])
      return Number(events.rows[0]!.n) === expect.events && key.rowCount === 1
    })
  } catch {
    return false
  }
}

/** A query on the server, in the schema. */
export async function pgQuery<R extends pg.QueryResultRow>(
  schema: string,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: schemaUrl(schema), application_name: 'session-events-bench' })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * The pids of the server's backends that serve connections with this application_name: their CPU
 * time is the part of a request that PostgreSQL spends, beside the API process's own.
 */
export async function backendPids(applicationName: string): Promise<number[]> {
  return withClient(async (client) => {
    const rows = await client.query<{ pid: number }>(
      'select pid from pg_stat_activity where application_name like $1',
      [`${applicationName}%`],
    )
    return rows.rows.map((r) => r.pid)
  })
}

/** CPU seconds of these processes (user + system), those still there. */
export function cpuOfPids(pids: readonly number[]): number {
  let total = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      total += (Number(fields[11]) + Number(fields[12])) / 100
    } catch {}
  }
  return total
}

/**
 * VACUUM ANALYZE of every table of the schema, as autovacuum would have done by the time anyone
 * reads a table this size (this server runs with autovacuum off): statistics, and the visibility
 * map that index-only scans need. Never the whole database.
 */
export async function vacuumSchema(schema: string, options: { analyzeOnly?: boolean } = {}): Promise<void> {
  await withClient(async (client) => {
    const tables = await client.query<{ tablename: string }>('select tablename from pg_tables where schemaname = $1', [
      schema,
    ])
    for (const { tablename } of tables.rows)
      await client.query(`${options.analyzeOnly ? 'analyze' : 'vacuum analyze'} ${schema}.${tablename}`)
  })
}
