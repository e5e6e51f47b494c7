import { randomBytes } from 'node:crypto'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Database } from '../src/store/db.js'
import { openPgliteStore, openStore } from '../src/store/open.js'
import { pgliteDialect } from '../src/store/pglite.js'
import { openSqlite } from '../src/store/sqlite.js'
import { SqlStore } from '../src/store/sql-store.js'
import type { Config } from '../src/config.js'
import { defaultToOsUser } from '../src/store/postgres.js'
import { postgresServerUrl, type Backend } from './backend-choice.js'
import { servePglite, type PgliteServer } from './pglite-server.js'
import type { PGlite as PGliteInstance } from '@electric-sql/pglite'

// The store under test, chosen per vitest project by TEST_STORE: SQLite in memory, a PostgreSQL
// server (TEST_DATABASE_URL or DATABASE_URL), or PGlite. On PostgreSQL every store gets a schema
// of its own, made here and dropped when its test file ends (setup.ts), so that runs and test
// files never see each other's rows, even on a database that others use.

export const backend: Backend = (process.env.TEST_STORE as Backend | undefined) ?? 'sqlite'
export const onPostgres = backend !== 'sqlite'

const SCHEMA_PREFIX = 'se_test_'
/** A schema older than this is left over from a run that died: the next run drops it. */
const STALE_MS = 60 * 60 * 1000

const cleanups: (() => Promise<unknown>)[] = []

/** Undoes what this test file made: stores closed, schemas dropped (setup.ts). */
export async function cleanUpTestStores(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!().catch((error) => console.warn('test clean-up failed:', error))
}

let adminPool: pg.Pool | undefined
function admin(): pg.Pool {
  if (!adminPool) {
    defaultToOsUser()
    const pool = new pg.Pool({ connectionString: postgresServerUrl(), max: 1 })
    pool.on('error', () => {})
    adminPool = pool
    cleanups.unshift(() => pool.end())
  }
  return adminPool
}

/** Runs SQL on the PostgreSQL server outside any test schema (for the tests that need a superuser view). */
export async function adminQuery<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]) {
  return admin().query<R>(text, values)
}

let staleDropped = false
async function dropStaleSchemas() {
  if (staleDropped) return
  staleDropped = true
  const { rows } = await admin().query<{ nspname: string }>('select nspname from pg_namespace where nspname like $1', [
    `${SCHEMA_PREFIX}%`,
  ])
  for (const { nspname } of rows) {
    const made = parseInt(nspname.slice(SCHEMA_PREFIX.length).split('_')[0] ?? '', 36)
    if (Number.isFinite(made) && Date.now() - made > STALE_MS)
      await admin().query(`drop schema if exists "${nspname}" cascade`)
  }
}

function newSchemaName(): string {
  return `${SCHEMA_PREFIX}${Date.now().toString(36)}_${randomBytes(5).toString('hex')}`
}

/** `url` with its search_path set to `schema`, as a connection option the server applies at connect. */
export function withSearchPath(url: string, schema: string): string {
  const u = new URL(url)
  u.searchParams.set('options', `-c search_path=${schema}`)
  return u.toString()
}

/**
 * A new, empty schema on the PostgreSQL server, dropped when the test file ends, and the
 * DATABASE_URL that selects it (for openStore or an API process).
 */
export async function freshSchema(): Promise<{ schema: string; url: string }> {
  const base = postgresServerUrl()
  if (!base) throw new Error('freshSchema needs a PostgreSQL server: set TEST_DATABASE_URL')
  await dropStaleSchemas()
  const schema = newSchemaName()
  await admin().query(`create schema "${schema}"`)
  cleanups.push(() => admin().query(`drop schema if exists "${schema}" cascade`))
  return { schema, url: withSearchPath(base, schema) }
}

const PGLITE = Symbol.for('session-events.test.pglite')

/**
 * The PGlite of this test worker. It takes seconds to start, so the pglite project runs its
 * files in one module context per worker (isolate: false in vitest.config.ts) and they share
 * it, each store in a schema of its own; it ends with the worker.
 */
export function sharedPglite(): Promise<PGliteInstance> {
  const slot = globalThis as { [PGLITE]?: Promise<PGliteInstance> }
  slot[PGLITE] ??= import('@electric-sql/pglite').then(({ PGlite }) => PGlite.create())
  return slot[PGLITE]
}

function track(store: SqlStore): SqlStore {
  let closed = false
  const close = store.close.bind(store)
  store.close = async () => {
    if (closed) return
    closed = true
    await close()
  }
  cleanups.push(() => store.close())
  return store
}

/**
 * A store of this project's backend with no migration run yet (for tests of a migration), closed
 * when the test file ends: SQLite in memory, PostgreSQL in a schema of its own.
 */
export async function unmigratedStore(): Promise<SqlStore> {
  if (backend === 'sqlite') return track(openSqlite(':memory:'))
  let db: Kysely<Database>
  if (backend === 'pglite') {
    const pglite = await sharedPglite()
    const schema = newSchemaName()
    await pglite.query(`create schema "${schema}"`)
    cleanups.push(() => pglite.query(`drop schema if exists "${schema}" cascade`))
    db = new Kysely<Database>({ dialect: pgliteDialect(pglite, { schema, closeOnDestroy: false }) })
  } else {
    const { url } = await freshSchema()
    db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }),
    })
  }
  return track(new SqlStore({ dialect: 'postgres', db }))
}

/**
 * A fresh, empty, migrated store of this project's backend, closed when the test file ends.
 * On PostgreSQL it lives in a new schema; `schema` names one that exists, to open a second
 * store over the same data.
 */
export async function openTestStore(options: { schema?: string; settings?: Partial<Config> } = {}): Promise<SqlStore> {
  if (backend === 'sqlite') return track(await openStore('sqlite::memory:'))
  if (backend === 'pglite') {
    const db = await sharedPglite()
    const schema = options.schema ?? newSchemaName()
    if (!options.schema) {
      await db.query(`create schema "${schema}"`)
      cleanups.push(() => db.query(`drop schema if exists "${schema}" cascade`))
    }
    return track(await openPgliteStore(db, { schema, closeOnDestroy: false }))
  }
  const url = options.schema ? withSearchPath(postgresServerUrl()!, options.schema) : (await freshSchema()).url
  return track(await openStore(url, { databasePoolMax: 4, ...options.settings }))
}

/** The schema a PostgreSQL store works in. */
export async function schemaOf(store: SqlStore): Promise<string> {
  const { sql } = await import('kysely')
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(store.db)
  return rows[0]!.schema
}

/**
 * A PostgreSQL that other processes and sockets can reach, in a fresh schema: the server's, or
 * on PGlite this worker's PGlite served on a local port (pglite-server.ts).
 */
export async function networkPostgres(): Promise<
  { url: string; host: string; port: number; kind: string } | undefined
> {
  if (backend === 'sqlite') return undefined
  if (backend === 'pglite') {
    const db = await sharedPglite()
    const server = await pgliteServer()
    const schema = newSchemaName()
    await db.query(`create schema "${schema}"`)
    cleanups.push(() => db.query(`drop schema if exists "${schema}" cascade`))
    const url = withSearchPath(`postgres://postgres@127.0.0.1:${server.port}/postgres`, schema)
    return { url, host: '127.0.0.1', port: server.port, kind: `PGlite served on 127.0.0.1:${server.port}` }
  }
  const { url } = await freshSchema()
  const u = new URL(url)
  return { url, host: u.hostname || '127.0.0.1', port: Number(u.port || 5432), kind: `the server at ${u.host}` }
}

let pgliteServing: Promise<PgliteServer> | undefined
function pgliteServer(): Promise<PgliteServer> {
  pgliteServing ??= sharedPglite().then(async (db) => {
    const server = await servePglite(db)
    cleanups.unshift(async () => {
      pgliteServing = undefined
      await server.close()
    })
    return server
  })
  return pgliteServing
}

/** Ends the connections a store opened under this application_name, as a database restart or an operator would. */
export async function killConnections(applicationName: string): Promise<number> {
  if (backend === 'pglite') return (await pgliteServer()).dropConnections(applicationName)
  const killed = await adminQuery(
    'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1',
    [applicationName],
  )
  return killed.rowCount ?? 0
}
