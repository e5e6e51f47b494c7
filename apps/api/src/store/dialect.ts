import {
  PostgresAdapter,
  sql,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'
import { SessionGoneError, StoreUnavailableError } from './errors.js'

// Everything that differs between SQLite and PostgreSQL lives here; the queries themselves are
// written once, in reader.ts and the writers, and the migrations once, in migrations.ts.

export type DialectName = 'sqlite' | 'postgres'

/** Which SQL dialect a Kysely instance speaks (PGlite speaks PostgreSQL). */
export function dialectOf(db: Kysely<any>): DialectName {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite'
}

/**
 * The column type of an id. Keyset pagination compares ids in SQL and cursors compare them in
 * JavaScript, so both must order them byte by byte: SQLite's BINARY collation does, PostgreSQL
 * needs `COLLATE "C"` (a database created with en_US.UTF-8 would sort `sev_…a` before `sev_…B`).
 */
export function idType(dialect: DialectName) {
  return dialect === 'postgres' ? sql`text collate "C"` : sql`text`
}

/**
 * A transaction that writes, and that other writers wait for rather than fail on:
 * - PostgreSQL: an ordinary transaction (READ COMMITTED); rows that must be written one writer
 *   at a time are locked inside it (lockSession).
 * - SQLite: BEGIN IMMEDIATE, which takes the database's write lock before reading anything, so
 *   a second writer (another process) waits (busy_timeout) instead of failing later on a snapshot
 *   that went stale.
 */
export async function writeTransaction<T>(db: Kysely<any>, run: (trx: Kysely<any>) => Promise<T>): Promise<T> {
  if (dialectOf(db) === 'postgres') return db.transaction().execute(run)
  return db.connection().execute(async (connection) => {
    await sql`begin immediate`.execute(connection)
    try {
      const result = await run(connection)
      await sql`commit`.execute(connection)
      return result
    } catch (error) {
      await sql`rollback`.execute(connection).catch(() => {})
      throw error
    }
  })
}

/**
 * Makes the session's writers wait for each other until this transaction ends: a row lock on
 * PostgreSQL; nothing to do on SQLite, where the write transaction holds the whole database.
 */
export async function lockSession(trx: Kysely<any>, sessionId: string): Promise<void> {
  if (dialectOf(trx) === 'postgres') await sql`select id from sessions where id = ${sessionId} for update`.execute(trx)
}

/**
 * lockSession for a write that adds to the session: SessionGoneError when it is not there (a
 * prune removed it after the API read it). The pruner leaves a session that a writer holds.
 */
export async function holdSession(trx: Kysely<any>, sessionId: string): Promise<void> {
  const found =
    dialectOf(trx) === 'postgres'
      ? await sql`select id from sessions where id = ${sessionId} for update`.execute(trx)
      : await sql`select id from sessions where id = ${sessionId}`.execute(trx)
  if (found.rows.length === 0) throw new SessionGoneError()
}

/**
 * Runs the migrations in one transaction that concurrent migrations wait for: several API
 * processes may start at once over one database. On PostgreSQL an advisory lock, per schema,
 * held until the transaction ends; on SQLite the write lock (writeTransaction).
 */
export async function inMigrationTransaction<T>(db: Kysely<any>, run: (trx: Kysely<any>) => Promise<T>): Promise<T> {
  return writeTransaction(db, async (trx) => {
    if (dialectOf(db) === 'postgres') {
      await sql`select pg_advisory_xact_lock(hashtext('session-events:migrate:' || current_schema()))`.execute(trx)
    }
    return run(trx)
  })
}

/** Node's network error codes that mean the database cannot be reached. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

/**
 * PostgreSQL SQLSTATEs that say "not now" rather than "wrong query": connection exceptions
 * (class 08), too many connections, the server shutting down or starting up, and a statement
 * cancelled by statement_timeout (the pool's way of shedding load).
 */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith('08') || ['53300', '57P01', '57P02', '57P03', '57014'].includes(code)
}

/** Messages of node-postgres and pg-pool that carry no code. */
const UNAVAILABLE_MESSAGES = [
  /timeout exceeded when trying to connect/i, // pg-pool: no connection free within connectionTimeoutMillis
  /Connection terminated/i, // the server or the network closed the socket
  /Client has encountered a connection error and is not queryable/i,
  /Client was closed and is not queryable/i,
  /Cannot use a pool after calling end on the pool/i,
]

/** Whether an error means the database is unreachable or overloaded for now. */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error instanceof StoreUnavailableError) return true
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true
    if (/^[0-9A-Z]{5}$/.test(code) && isUnavailableSqlState(code)) return true
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return true
  }
  if (error instanceof AggregateError && error.errors.some(isUnavailable)) return true
  return UNAVAILABLE_MESSAGES.some((m) => m.test(error.message))
}

/** The error to throw for `error`: StoreUnavailableError when the database is unavailable, else itself. */
export function asStoreError(error: unknown): unknown {
  if (!isUnavailable(error) || error instanceof StoreUnavailableError) return error
  return new StoreUnavailableError(`the database is unavailable: ${(error as Error).message}`, { cause: error })
}

async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    throw asStoreError(error)
  }
}

class GuardedConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}
  executeQuery<R>(query: Parameters<DatabaseConnection['executeQuery']>[0]): Promise<QueryResult<R>> {
    return guard(() => this.inner.executeQuery<R>(query))
  }
  streamQuery<R>(query: Parameters<DatabaseConnection['streamQuery']>[0], chunkSize?: number) {
    return this.inner.streamQuery<R>(query, chunkSize)
  }
}

const unwrap = (c: DatabaseConnection) => (c instanceof GuardedConnection ? c.inner : c)

/** A driver whose "database unavailable" errors are StoreUnavailableError, whatever the driver. */
class GuardedDriver implements Driver {
  constructor(readonly inner: Driver) {}
  init() {
    return guard(() => this.inner.init())
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    return new GuardedConnection(await guard(() => this.inner.acquireConnection()))
  }
  beginTransaction(c: DatabaseConnection, settings: TransactionSettings) {
    return guard(() => this.inner.beginTransaction(unwrap(c), settings))
  }
  commitTransaction(c: DatabaseConnection) {
    return guard(() => this.inner.commitTransaction(unwrap(c)))
  }
  rollbackTransaction(c: DatabaseConnection) {
    return guard(() => this.inner.rollbackTransaction(unwrap(c)))
  }
  savepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    return guard(() => this.inner.savepoint!(unwrap(c), name, compile))
  }
  rollbackToSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    return guard(() => this.inner.rollbackToSavepoint!(unwrap(c), name, compile))
  }
  releaseSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    return guard(() => this.inner.releaseSavepoint!(unwrap(c), name, compile))
  }
  releaseConnection(c: DatabaseConnection) {
    return this.inner.releaseConnection(unwrap(c))
  }
  destroy() {
    return this.inner.destroy()
  }
}

/**
 * The same dialect, with every "cannot reach the database" error turned into
 * StoreUnavailableError, which the app answers with a 503 and Retry-After.
 */
export function reportingUnavailable(dialect: Dialect): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new GuardedDriver(dialect.createDriver()),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  }
}
