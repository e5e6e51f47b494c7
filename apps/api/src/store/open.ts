import { mkdirSync } from 'node:fs'
import { userInfo } from 'node:os'
import { dirname, resolve } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import type { Database } from './db.js'
import { asStoreError, reportingUnavailable } from './dialect.js'
import { migrate } from './migrations.js'
import { pgliteDialect, type PGliteDialectOptions, type PGliteLike } from './pglite.js'
import type { FastRead } from './prepared.js'
import { SqlStore } from './sql-store.js'

/** Where the embedded store lives when DATABASE_URL is not set: ./data/ of where npm was run. */
export function defaultSqlitePath(): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), 'data/session-events.db')
}

export class StoreConfigError extends Error {
  override name = 'StoreConfigError'
}

/** What DATABASE_URL names: `sqlite:PATH`, `sqlite::memory:`, or `postgres://…`. */
export function parseDatabaseUrl(url: string | undefined): { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string } {
  if (url === undefined || url === '') return { kind: 'sqlite', path: defaultSqlitePath() }
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (path === '') throw new StoreConfigError('DATABASE_URL "sqlite:" needs a path, such as sqlite:./data/events.db or sqlite::memory:')
    return { kind: 'sqlite', path: path === ':memory:' ? ':memory:' : resolve(path) }
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url }
  throw new StoreConfigError(
    `DATABASE_URL must start with sqlite: or postgres:// (got "${url.replace(/\/\/[^@]*@/, '//***@')}")`,
  )
}

function openSqlite(path: string): SqlStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const database = new SQLite(path)
  database.pragma('journal_mode = WAL')
  database.pragma('synchronous = NORMAL')
  database.pragma('foreign_keys = ON')
  database.pragma('busy_timeout = 5000')
  return new SqlStore({
    dialect: 'sqlite',
    db: new Kysely<Database>({ dialect: reportingUnavailable(new SqliteDialect({ database: reusingStatements(database) })) }),
    fastRead: fastSqliteRead(database),
    runsVersion: sqliteRunsVersion(database),
  })
}

/**
 * What changes whenever something a run shows is written, by this connection or any other: the
 * count that migration 3's triggers keep in the writing transactions. One row read by its
 * primary key, against a query of four joined tables; appending events leaves it alone, so the
 * runs stay cached while sessions are being written to.
 */
function sqliteRunsVersion(database: SQLite.Database): () => string | undefined {
  let statement: SQLite.Statement | undefined
  return () => {
    if (database.inTransaction || !database.open) return undefined
    try {
      statement ??= database.prepare('SELECT n FROM run_changes WHERE id = 1').pluck()
      return String(statement.get())
    } catch (error) {
      throw asStoreError(error)
    }
  }
}

/**
 * The hot reads, run on the statement itself: better-sqlite3 is synchronous, and Kysely's driver
 * wraps each query in a connection, a mutex and promises that cost about as much again as the
 * query. Rows come back as arrays (raw mode), or as values when there is one column (pluck), which
 * better-sqlite3 makes much faster than objects, and become objects here, with the same keys in
 * the same order. While a transaction is open (its statements interleave with awaits), or once
 * the database is closed, a read goes through Kysely instead: it waits for the transaction as
 * before, and fails the same way after close.
 */
function fastSqliteRead(database: SQLite.Database): FastRead {
  // Statements of their own: raw mode is a setting of the statement, and Kysely's expect objects.
  const reads = new Map<string, { statement: SQLite.Statement; columns: string[] }>()
  return (sql, parameters) => {
    if (database.inTransaction || !database.open) return undefined
    try {
      let read = reads.get(sql)
      if (!read) {
        if (reads.size >= 1000) reads.clear()
        const statement = database.prepare(sql)
        if (!statement.reader) return undefined
        const columns = statement.columns().map((c) => c.name)
        // One column (a page's ids): its values alone, not an array around each.
        read = { statement: columns.length === 1 ? statement.pluck(true) : statement.raw(true), columns }
        reads.set(sql, read)
      }
      const { statement, columns } = read
      const rows = statement.all(parameters) as unknown[]
      const objects: Record<string, unknown>[] = new Array(rows.length)
      if (columns.length === 1) {
        const column = columns[0]!
        for (let r = 0; r < rows.length; r++) objects[r] = { [column]: rows[r] }
        return objects
      }
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r] as unknown[]
        const object: Record<string, unknown> = {}
        for (let i = 0; i < columns.length; i++) object[columns[i]!] = row[i]
        objects[r] = object
      }
      return objects
    } catch (error) {
      throw asStoreError(error)
    }
  }
}

/**
 * Kysely's SQLite driver prepares every query it runs, and preparing costs about as much as
 * running a page query. better-sqlite3 statements can be run again and again (the driver only
 * calls all() and run(), never iterates two at once), so each SQL text is prepared once.
 */
function reusingStatements(database: SQLite.Database): { close(): void; prepare(sql: string): SQLite.Statement } {
  const statements = new Map<string, SQLite.Statement>()
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = statements.get(sql)
      if (!statement) {
        // Bounded: statements of one-off SQL (migrations, batch inserts of odd sizes) come and go.
        if (statements.size >= 1000) statements.clear()
        statement = database.prepare(sql)
        statements.set(sql, statement)
      }
      return statement
    },
  }
}

/** The PostgreSQL connection pool of one API process; every setting has an environment variable. */
export interface PoolSettings {
  /** DATABASE_POOL_MAX: connections this process opens at most. */
  max: number
  /** DATABASE_POOL_TIMEOUT_MS: how long a request waits for a connection before it gets a 503. */
  acquireTimeoutMs: number
  /** DATABASE_IDLE_TIMEOUT_MS: an idle connection is closed after this long. */
  idleTimeoutMs: number
  /** DATABASE_STATEMENT_TIMEOUT_MS: the server cancels a statement that runs longer (0: never). */
  statementTimeoutMs: number
}

export const DEFAULT_POOL_SETTINGS: PoolSettings = {
  max: 10,
  acquireTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  statementTimeoutMs: 15_000,
}

const POOL_ENV: Record<keyof PoolSettings, { name: string; min: number }> = {
  max: { name: 'DATABASE_POOL_MAX', min: 1 },
  acquireTimeoutMs: { name: 'DATABASE_POOL_TIMEOUT_MS', min: 1 },
  idleTimeoutMs: { name: 'DATABASE_IDLE_TIMEOUT_MS', min: 0 },
  statementTimeoutMs: { name: 'DATABASE_STATEMENT_TIMEOUT_MS', min: 0 },
}

/** The pool settings from the environment, over the defaults; a bad value is a StoreConfigError. */
export function poolSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): PoolSettings {
  const settings = { ...DEFAULT_POOL_SETTINGS }
  for (const [key, { name, min }] of Object.entries(POOL_ENV) as [keyof PoolSettings, { name: string; min: number }][]) {
    const text = env[name]
    if (text === undefined || text === '') continue
    if (!/^\d+$/.test(text) || Number(text) < min) {
      throw new StoreConfigError(`${name} must be a whole number of at least ${min} (got "${text}")`)
    }
    settings[key] = Number(text)
  }
  return settings
}

// node-postgres returns int8 (count(*), sums, sizes) as strings; PGlite returns numbers. The
// store wants numbers from both, and every int8 it reads is far below 2^53.
const INT8_OID = 20
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

/**
 * A URL without a user means the operating system's user, as for psql; node-postgres takes it
 * from $USER only, which a service manager or CI may not set.
 */
export function defaultToOsUser(): void {
  if (!pg.defaults.user && !process.env.PGUSER) pg.defaults.user = userInfo().username
}

function openPostgres(url: string, settings: PoolSettings): SqlStore {
  defaultToOsUser()
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    connectionTimeoutMillis: settings.acquireTimeoutMs,
    idleTimeoutMillis: settings.idleTimeoutMs,
    ...(settings.statementTimeoutMs > 0 && { statement_timeout: settings.statementTimeoutMs }),
    keepAlive: true,
    application_name: process.env.PGAPPNAME || 'session-events-api',
    types: pgTypes,
  })
  // A connection that the server or the network drops emits "error": on the pool when it is
  // idle, on the client when it is checked out. Unheard, either would end the process. The
  // query in flight fails on its own (and becomes a 503), and the pool replaces the connection
  // when it is next needed, so there is nothing to do here but not crash.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  return new SqlStore({
    dialect: 'postgres',
    db: new Kysely<Database>({ dialect: reportingUnavailable(new PostgresDialect({ pool })) }),
  })
}

/**
 * A store over a PGlite instance (in-process PostgreSQL): the test suite's PostgreSQL when no
 * server is at hand. Migrated like any other; closing the store closes PGlite unless told not to.
 * PGlite is a devDependency: the caller imports it, this module never does.
 */
export async function openPgliteStore(pglite: PGliteLike, options: PGliteDialectOptions = {}): Promise<SqlStore> {
  return migrated(
    new SqlStore({
      dialect: 'postgres',
      db: new Kysely<Database>({ dialect: reportingUnavailable(pgliteDialect(pglite, options)) }),
    }),
  )
}

async function migrated(store: SqlStore): Promise<SqlStore> {
  try {
    await migrate(store.db)
  } catch (error) {
    await store.close().catch(() => {})
    throw error
  }
  return store
}

/** Opens the store that DATABASE_URL names and brings its schema up to date. */
export async function openStore(databaseUrl?: string, options: { pool?: Partial<PoolSettings> } = {}): Promise<SqlStore> {
  const target = parseDatabaseUrl(databaseUrl)
  if (target.kind === 'sqlite') return migrated(openSqlite(target.path))
  return migrated(openPostgres(target.url, { ...poolSettingsFromEnv(), ...options.pool }))
}
