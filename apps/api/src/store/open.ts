import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import type { Database } from './db.js'
import { migrate } from './migrations.js'
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
  return new SqlStore({ dialect: 'sqlite', db: new Kysely<Database>({ dialect: new SqliteDialect({ database }) }) })
}

function openPostgres(url: string): SqlStore {
  const pool = new pg.Pool({ connectionString: url, max: 10, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5_000 })
  return new SqlStore({ dialect: 'postgres', db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }) })
}

/** Opens the store that DATABASE_URL names and brings its schema up to date. */
export async function openStore(databaseUrl?: string): Promise<SqlStore> {
  const target = parseDatabaseUrl(databaseUrl)
  const store = target.kind === 'sqlite' ? openSqlite(target.path) : openPostgres(target.url)
  try {
    await migrate(store.db)
  } catch (error) {
    await store.close().catch(() => {})
    throw error
  }
  return store
}
