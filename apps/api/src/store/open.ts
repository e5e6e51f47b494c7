import { Kysely } from 'kysely'
import { defaultConfig, parseDatabaseUrl, type Config } from '../config.js'
import type { Database } from './db.js'
import { reportingUnavailable } from './dialect.js'
import { migrate } from './migrations.js'
import { pgliteDialect, type PGliteDialectOptions, type PGliteLike } from './pglite.js'
import { openPostgres, postgresRunsVersion } from './postgres.js'
import { openSqlite } from './sqlite.js'
import { SqlStore } from './sql-store.js'

// Opens the store that a DATABASE_URL names and brings its schema up to date.

/**
 * The store that DATABASE_URL names, migrated. Its settings (the
 * pool, application_name, where a relative SQLite path is) are the Config's: loadConfig()'s, or
 * those given, the rest at their defaults (config.ts).
 */
export async function openStore(databaseUrl?: string, settings: Partial<Config> = {}): Promise<SqlStore> {
  const config = defaultConfig(settings)
  const target = parseDatabaseUrl(databaseUrl, config.cwd)
  if (target.kind === 'sqlite') return migrated(openSqlite(target.path))
  const pool = {
    max: config.databasePoolMax,
    acquireTimeoutMs: config.databasePoolTimeoutMs,
    idleTimeoutMs: config.databaseIdleTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
  }
  return migrated(openPostgres(target.url, pool, config.applicationName))
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
    await store.keyOrder.load()
  } catch (error) {
    await store.close().catch(() => {})
    throw error
  }
  return store
}
