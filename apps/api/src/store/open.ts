import { resolve } from 'node:path'
import { Kysely } from 'kysely'
import type { Database } from './db.js'
import { reportingUnavailable } from './dialect.js'
import { migrate } from './migrations.js'
import { pgliteDialect, type PGliteDialectOptions, type PGliteLike } from './pglite.js'
import { DEFAULT_POOL_SETTINGS, openPostgres, postgresRunsVersion, type PoolSettings } from './postgres.js'
import { openSqlite } from './sqlite.js'
import { SqlStore } from './sql-store.js'

// Opens the store that a DATABASE_URL names and brings its schema up to date.

export class StoreConfigError extends Error {
  override name = 'StoreConfigError'
}

/**
 * What DATABASE_URL names: `sqlite:PATH`, `sqlite::memory:`, or `postgres://…`; unset, the
 * embedded store in `data/session-events.db` under `cwd`.
 */
export function parseDatabaseUrl(
  url: string | undefined,
  cwd: string = process.cwd(),
): { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string } {
  if (url === undefined || url === '') return { kind: 'sqlite', path: resolve(cwd, 'data/session-events.db') }
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (path === '')
      throw new StoreConfigError(
        'DATABASE_URL "sqlite:" needs a path, such as sqlite:./data/events.db or sqlite::memory:',
      )
    return { kind: 'sqlite', path: path === ':memory:' ? ':memory:' : resolve(cwd, path) }
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url }
  throw new StoreConfigError(
    `DATABASE_URL must start with sqlite: or postgres:// (got "${url.replace(/\/\/[^@]*@/, '//***@')}")`,
  )
}

export interface OpenStoreOptions {
  /** PostgreSQL's pool; the defaults are DEFAULT_POOL_SETTINGS. */
  pool?: Partial<PoolSettings>
  /** PostgreSQL's application_name for this process's connections. Default: session-events-api. */
  applicationName?: string
  /** Where a relative SQLite path (and the default one) is. Default: the working directory. */
  cwd?: string
}

/** Opens the store that DATABASE_URL names and brings its schema up to date. */
export async function openStore(databaseUrl?: string, options: OpenStoreOptions = {}): Promise<SqlStore> {
  const target = parseDatabaseUrl(databaseUrl, options.cwd)
  if (target.kind === 'sqlite') return migrated(openSqlite(target.path))
  return migrated(
    openPostgres(
      target.url,
      { ...DEFAULT_POOL_SETTINGS, ...options.pool },
      options.applicationName ?? 'session-events-api',
    ),
  )
}

/**
 * A store over a PGlite instance (in-process PostgreSQL): the test suite's PostgreSQL when no
 * server is at hand. Migrated like any other; closing the store closes PGlite unless told not to.
 * PGlite is a devDependency: the caller imports it, this module never does.
 */
export async function openPgliteStore(pglite: PGliteLike, options: PGliteDialectOptions = {}): Promise<SqlStore> {
  return migrated(
    (() => {
      const db = new Kysely<Database>({ dialect: reportingUnavailable(pgliteDialect(pglite, options)) })
      return new SqlStore({ dialect: 'postgres', db, runsVersion: postgresRunsVersion(db) })
    })(),
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
